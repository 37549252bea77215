// Package e2e runs meshinit's whole pipeline on this machine, in two ways. Against a bare control
// plane: the injector binary registered by the chart's webhook configuration, pods created through
// the API server, their kuma-init run exactly as injected, or kuma-cni run through libcni for them,
// in real network namespaces, and real traffic judged by where it lands (TestEndToEnd, each
// annotation set). On a real node (test/node), one for the whole test binary: the chart installed
// and the pods it injects running on the kubelet, with real traffic through the kuma-dp stand-in
// (the *OnNode tests). TestDemo is `make demo`.
package e2e

import (
	"context"
	"testing"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/test/standin"
	"github.com/meshinit/meshinit/webhook/inject"
)

// TestEndToEnd: for each annotation set, the pod the webhook injects has its traffic go where its
// annotations say, whether its rules come from its kuma-init, run as injected, or from kuma-cni
// fetching the same pod from the API server; and both give the very same verdicts.
func TestEndToEnd(t *testing.T) {
	prereq.Root(t)
	ctx := context.Background()
	kumaInit, kumaCNI := binaries.Build(t, "kuma-init"), binaries.Build(t, "kuma-cni")
	programs := kumactl(t, kumaInit)
	c := startCluster(ctx, t, binaries.Build(t, "injector"))
	const namespace = "e2e"
	c.meshedNamespace(ctx, t, namespace)

	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			pod, _, err := c.create(ctx, app(namespace, "pod-"+string(rune('a'+i)), sc.annotations))
			if err != nil {
				t.Fatal(err)
			}
			if pod.Annotations[api.AnnotationSidecarInjected] != "true" {
				t.Fatalf("the pod was not injected: %v", pod.Annotations)
			}
			cfg, err := api.ParseTransparentProxyConfig([]byte(pod.Annotations[api.AnnotationTransparentProxyConfig]))
			if err != nil {
				t.Fatal(err)
			}

			viaInit := standin.New(t, cfg)
			cmd := asKubelet(t, pod, inject.InitName, programs)
			viaInit.Pod.Run(t, cmd[0], cmd[1:]...)
			viaCNI := standin.New(t, cfg)
			cniAdd(ctx, t, kumaCNI, c.Kubeconfig, viaCNI.Pod, pod)

			for _, p := range sc.paths {
				for _, f := range p.families {
					a, b := viaInit.Check(t, f, p.Probe), viaCNI.Send(t, f, p.Probe)
					if a.Landed != b.Landed || a.OriginalDst != b.OriginalDst || a.OK() != b.OK() {
						t.Errorf("%s %s: kuma-init's rules sent it to %s (original destination %s), kuma-cni's to %s (%s; %s)",
							f, p.Name, a.Landed, a.OriginalDst, b.Landed, b.OriginalDst, b.Problem)
					}
				}
			}
		})
	}
}
