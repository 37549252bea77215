package chart

import (
	"bytes"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"

	"github.com/meshinit/meshinit/charts"
)

// TestHelmUpgradeKeepsCertificate: `helm install`, then `helm upgrade` with another value, through
// the Helm SDK against the real API server: the upgrade changes what it should and keeps the
// generated certificate (the chart looks it up), so the webhook never trusts a CA the injector
// does not serve; `helm uninstall` removes it all.
func TestHelmUpgradeKeepsCertificate(t *testing.T) {
	e := shared.Get(t)
	const ns, name = "helm-upgrade", "upgrade"
	if err := e.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: objectMeta(ns)}); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := e.WriteKubeconfig(t), ns
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}
	ch, err := charts.Load()
	if err != nil {
		t.Fatal(err)
	}

	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.WaitStrategy = name, ns, kube.HookOnlyStrategy
	if _, err := in.RunWithContext(t.Context(), ch, nil); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	secretKey := client.ObjectKey{Namespace: ns, Name: "upgrade-meshinit-injector-tls"}
	before := &corev1.Secret{}
	if err := e.Client.Get(t.Context(), secretKey, before); err != nil {
		t.Fatal(err)
	}

	up := action.NewUpgrade(cfg)
	up.Namespace, up.WaitStrategy = ns, kube.HookOnlyStrategy
	if _, err := up.RunWithContext(t.Context(), name, ch, map[string]any{"controlPlane": map[string]any{"replicas": 2}}); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	after := &corev1.Secret{}
	if err := e.Client.Get(t.Context(), secretKey, after); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if !bytes.Equal(before.Data[key], after.Data[key]) {
			t.Errorf("the upgrade replaced %s", key)
		}
	}
	deploy := &appsv1.Deployment{}
	if err := e.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "upgrade-meshinit-injector"}, deploy); err != nil {
		t.Fatal(err)
	}
	if *deploy.Spec.Replicas != 2 {
		t.Errorf("replicas = %d after the upgrade, want 2", *deploy.Spec.Replicas)
	}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := e.Client.Get(t.Context(), client.ObjectKey{Name: "upgrade-meshinit-injector"}, mwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range mwc.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, after.Data["ca.crt"]) {
			t.Errorf("webhook %s trusts another CA than the injector's", w.Name)
		}
	}

	un := action.NewUninstall(cfg)
	un.WaitStrategy = kube.HookOnlyStrategy
	if _, err := un.Run(name); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	for _, gone := range []struct {
		obj client.Object
		key client.ObjectKey
	}{
		{&corev1.Secret{}, secretKey},
		{&appsv1.Deployment{}, client.ObjectKey{Namespace: ns, Name: "upgrade-meshinit-injector"}},
		{&admissionregistrationv1.MutatingWebhookConfiguration{}, client.ObjectKey{Name: "upgrade-meshinit-injector"}},
	} {
		if err := e.Client.Get(t.Context(), gone.key, gone.obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after uninstall: %v", gone.obj, gone.key, err)
		}
	}
}
