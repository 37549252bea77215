package load

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/binaries"
	testcluster "github.com/meshinit/meshinit/test/cluster"
	"github.com/meshinit/meshinit/test/poll"
)

// The chart's two webhooks (templates/webhook.yaml): one for the pods of labelled namespaces, one
// for labelled pods of other namespaces.
const (
	namespaceWebhook = "namespace.sidecar-injector.meshinit.io"
	podWebhook       = "pod.sidecar-injector.meshinit.io"
)

// podsPerCase are created for each kind of pod while the injector is down.
const podsPerCase = 10

// TestInjectorDown stops the injector and creates pods. With failurePolicy Fail, pods of labelled
// namespaces, and labelled pods of other namespaces, are refused with a message that names the
// webhook and says it could not be called; with Ignore they are admitted without the sidecar.
// Either way, pods of unlabelled namespaces are created as usual, and pods of the injector's own
// namespace and of kube-system are never held up, even when they and their namespace are
// labelled: the registration leaves them out, so that the injector can always start.
func TestInjectorDown(t *testing.T) {
	ctx := t.Context()
	c, inj := testcluster.Start(ctx, t, binaries.Build(t, "injector"), nil)
	meshed := meshedNamespaces(ctx, t, c.Client, "down", 1)[0]
	plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "down-plain"}}
	off := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "down-off", Labels: map[string]string{api.LabelSidecarInjection: "disabled"}}}
	for _, ns := range []*corev1.Namespace{plain, off} {
		if err := c.Client.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	system := &corev1.Namespace{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: testcluster.SystemNamespace}, system); err != nil {
		t.Fatal(err)
	}
	system.Labels[api.LabelSidecarInjection] = "enabled"
	if err := c.Client.Update(ctx, system); err != nil {
		t.Fatal(err)
	}
	waitForInjection(ctx, t, c.Client, meshed)
	inj.Stop(10 * time.Second)

	labelled := func(pod *corev1.Pod) *corev1.Pod {
		pod.Labels = map[string]string{api.LabelSidecarInjection: "enabled"}
		return pod
	}
	cases := []struct {
		name string
		pod  func(name string) *corev1.Pod
		// webhook is the one that must be called for the pod; none for pods left out.
		webhook string
	}{
		{"pod of a labelled namespace", func(name string) *corev1.Pod { return app(meshed, name) }, namespaceWebhook},
		{"labelled pod of an unlabelled namespace", func(name string) *corev1.Pod { return labelled(app(plain.Name, name)) }, podWebhook},
		{"pod of an unlabelled namespace", func(name string) *corev1.Pod { return app(plain.Name, name) }, ""},
		{"pod of a disabled namespace", func(name string) *corev1.Pod { return app(off.Name, name) }, ""},
		{"labelled pod of a disabled namespace", func(name string) *corev1.Pod { return labelled(app(off.Name, name)) }, podWebhook},
		{"labelled pod of the injector's labelled namespace", func(name string) *corev1.Pod { return labelled(app(testcluster.SystemNamespace, name)) }, ""},
		{"labelled pod of kube-system", func(name string) *corev1.Pod { return labelled(app("kube-system", name)) }, ""},
	}
	for _, policy := range []string{"Fail", "Ignore"} {
		t.Run(policy, func(t *testing.T) {
			c.Register(ctx, t, inj.URL, map[string]any{"webhook": map[string]any{"failurePolicy": policy}})
			waitForPolicy(ctx, t, c.Client, meshed, policy)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					var admitted, injectedPods int
					var refusal string
					var took []time.Duration
					for n := range podsPerCase {
						pod := tc.pod(fmt.Sprintf("%s-%d-%d", strings.ToLower(policy), i, n))
						began := time.Now()
						err := c.Client.Create(ctx, pod)
						took = append(took, time.Since(began))
						switch {
						case err == nil:
							admitted++
							if injected(pod) {
								injectedPods++
							}
						case tc.webhook == "" || policy == "Ignore":
							t.Errorf("%s/%s was refused: %v", pod.Namespace, pod.Name, err)
						default:
							refusal = err.Error()
							for _, want := range []string{fmt.Sprintf("failed calling webhook %q", tc.webhook), "failed to call webhook"} {
								if !strings.Contains(refusal, want) {
									t.Errorf("%s/%s was refused with %q, which does not say %q", pod.Namespace, pod.Name, refusal, want)
								}
							}
						}
					}
					if tc.webhook != "" && policy == "Fail" && admitted > 0 {
						t.Errorf("%d of %d pods were admitted while the injector was down", admitted, podsPerCase)
					}
					if injectedPods > 0 {
						t.Errorf("%d pods were injected with the injector down", injectedPods)
					}
					line := fmt.Sprintf("figures: injector down, failurePolicy %s, %s: %d of %d admitted", policy, tc.name, admitted, podsPerCase)
					switch {
					case admitted > 0 && tc.webhook != "":
						line += ", without the sidecar although they should have it"
					case admitted > 0:
						line += ", none injected, as none should be"
					}
					line += fmt.Sprintf("; create p50 %s", (&outcome{latencies: took}).latency(0.5).Round(100*time.Microsecond))
					if refusal != "" {
						line += "; refused with: " + refusal
					}
					t.Log(line)
				})
			}
		})
	}
}

// waitForPolicy waits until the API server applies the registered failure policy to pods of the
// meshed namespace, with the injector down: refuses them (Fail) or admits them (Ignore). It asks
// with dry-run creates, which leave nothing behind.
func waitForPolicy(ctx context.Context, t testing.TB, c client.Client, meshed, policy string) {
	t.Helper()
	poll.Until(t, "the API server applies failurePolicy "+policy+" after its registration", func() (bool, error) {
		err := c.Create(ctx, app(meshed, "probe"), client.DryRunAll)
		return (err == nil) == (policy == "Ignore"), nil
	})
}
