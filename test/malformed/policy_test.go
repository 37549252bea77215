package malformed

import (
	"context"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

// TestMain stops the control plane of the policy's rows, if one started.
func TestMain(m *testing.M) { policyCluster.Main(m) }

// policyCluster is a real API server enforcing the chart's ValidatingAdmissionPolicy, which alone
// answers updates of a pod after admission: the webhook sees pods created, never updated.
var policyCluster = kubeenv.Shared[*policyEnv]{What: "a control plane for the chart's admission policy", Start: startPolicyEnv,
	Stop: func(e *policyEnv) error { return kubeenv.Stop(e.env) }}

type policyEnv struct {
	env    *envtest.Environment
	client client.Client
}

// startPolicyEnv starts a control plane, applies the policy and its binding as the chart renders
// them for release meshinit, and returns once the API server enforces them: a canary pod's
// configuration can no longer be rewritten.
func startPolicyEnv() (_ *policyEnv, err error) {
	env, err := kubeenv.Environment()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = kubeenv.Stop(env)
		}
	}()
	cfg, err := env.Start()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	manifest, err := charts.Render(ctx, charts.Release{Name: "meshinit", Namespace: "kuma-system", KubeVersion: kubeenv.KubeVersion})
	if err != nil {
		return nil, err
	}
	objs, err := charts.Objects(manifest)
	if err != nil {
		return nil, err
	}
	applied := 0
	for _, obj := range objs {
		if kind := obj.GetKind(); kind == "ValidatingAdmissionPolicy" || kind == "ValidatingAdmissionPolicyBinding" {
			if err := c.Create(ctx, obj); err != nil {
				return nil, err
			}
			applied++
		}
	}
	if applied != 2 {
		return nil, errors.New("the chart renders no admission policy and binding")
	}
	e := &policyEnv{env: env, client: c}
	canary, err := e.injectedPod(ctx)
	if err != nil {
		return nil, err
	}
	// Each try writes another value: writing the same again changes nothing, which the policy lets through.
	try := 0
	return e, poll.Wait(ctx, func() (bool, error) {
		try++
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"{\"wait\":%d}"}}}`, api.AnnotationTransparentProxyConfig, try)
		err := c.Patch(ctx, canary.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)))
		return apierrors.IsForbidden(err), nil
	})
}

// injectedPod creates pod app, injected as the webhook injects it (native sidecars, init mode,
// an app that runs as no root), in a namespace of its own.
func (e *policyEnv) injectedPod(ctx context.Context) (*corev1.Pod, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "malformed-"}}
	if err := e.client.Create(ctx, ns); err != nil {
		return nil, err
	}
	res, err := (&inject.Injector{Config: testconfig.Default(), NativeSidecars: true}).Inject(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns.Name},
		Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
			Containers: []corev1.Container{{Name: "app", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}, ns.Name, map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil {
		return nil, err
	}
	return res.Pod, e.client.Create(ctx, res.Pod)
}

// The policy's places: an update of an injected pod, as `kubectl patch` sends it (a strategic
// merge patch, given as YAML), and an ephemeral container added to one, as `kubectl debug` does
// (its securityContext, given as YAML). The message is the API server's refusal, as kubectl shows
// it after "Error from server (Forbidden): ".
var (
	podUpdate = &place{"`kubectl patch pod app -p …` of an injected pod, after admission, under the chart's admission policy",
		func(t *testing.T, in string) string {
			e := policyCluster.Get(t)
			pod, err := e.injectedPod(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			patch, err := yaml.YAMLToJSON([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			return message(e.client.Patch(t.Context(), pod, client.RawPatch(types.StrategicMergePatchType, patch)))
		}}
	debugContainer = &place{"`kubectl debug app --image busybox` of an injected pod: the ephemeral container's securityContext, under the chart's admission policy",
		func(t *testing.T, in string) string {
			e := policyCluster.Get(t)
			pod, err := e.injectedPod(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			sc := fromYAML[*corev1.SecurityContext](t, in)
			pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox", SecurityContext: sc}})
			return message(e.client.SubResource("ephemeralcontainers").Update(t.Context(), pod))
		}}
)

// policyRefusal begins the API server's refusal of an update of pod app by the chart's policy.
const policyRefusal = `pods "app" is forbidden: ValidatingAdmissionPolicy 'meshinit-injected-pods' with binding 'meshinit-injected-pods' denied request: `
