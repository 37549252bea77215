package protection

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/admitted"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/cniconf"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/podkit"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

// TestRewrittenConfigurationRefused: where the policy does not stop it (a cluster before 1.30,
// admissionPolicy.enabled=false, or an update by the injector's own account), an injected pod's
// configuration is rewritten before it starts. kuma-cni, run by libcni for the pod's network
// namespace as a runtime runs it, fails the ADD with the reason and installs nothing; the
// validation container's command line, the real kuma-init as kumactl with the container's own
// environment and the document as the downward API projects it, exits non-zero with the reason.
// The same pod, as admitted, is set up and validated.
func TestRewrittenConfigurationRefused(t *testing.T) {
	prereq.Root(t)
	for _, p := range []string{"ptp", "host-local"} {
		prereq.File(t, filepath.Join(cniconf.DebianPlugins, p))
	}
	prereq.Binary(t, "iptables-nft-restore")
	e := start(t, true)
	kubeconfig := (&kubeenv.Env{Config: e.Rest}).WriteKubeconfig(t)
	kumaCNI, kumaInit := binaries.Build(t, "kuma-cni"), binaries.Build(t, "kuma-init")
	kumactl := filepath.Join(t.TempDir(), "kumactl")
	if err := os.Symlink(kumaInit, kumactl); err != nil {
		t.Fatal(err)
	}
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(kumaCNI), cniconf.DebianPlugins}, t.TempDir(), nil)
	ns := namespace(t, e, map[string]string{api.LabelSidecarInjection: "enabled"})

	// The cluster network of the test, ptp, is IPv4 only.
	ipv4 := func(p *corev1.Pod) *corev1.Pod {
		p.Annotations = map[string]string{api.AnnotationIPFamilyMode: "ipv4"}
		return p
	}
	asAdmitted := create(t, e.Client, ipv4(GatedPod(ns, "admitted")))
	rewritten := create(t, e.Client, ipv4(GatedPod(ns, "rewritten")))
	if err := Patch(t, e.Client, rewritten, Annotations(api.AnnotationTransparentProxyConfig, Forged)); err != nil {
		t.Fatalf("rewriting the configuration, without the policy: %v", err)
	}
	mismatch := (&admitted.MismatchError{Got: admitted.Digest([]byte(Forged)),
		Want: admitted.Digest([]byte(rewritten.Annotations[api.AnnotationTransparentProxyConfig]))}).Error()

	for i, tc := range []struct {
		// created is the pod as the API server created it, injected.
		created *corev1.Pod
		// addErr is the ADD's error, validateErr the validator's, with %s for the document's
		// path; empty: success.
		addErr, validateErr string
	}{
		{created: asAdmitted},
		{created: rewritten, addErr: `plugin type="kuma-cni" failed (add): kuma-cni: pod ` + ns + "/rewritten: " + mismatch,
			validateErr: "Error: --transparent-proxy-config %s: " + mismatch + "\n"},
	} {
		t.Run(tc.created.Name, func(t *testing.T) {
			pod := get(t, e.Client, tc.created)
			netns := netkit.NewBare(t)
			list := cniconf.List(t, "1.0.0", cniconf.ClusterNetwork(t, 40+i), cniconf.KumaCNI(kubeconfig))
			rt := cniconf.Runtime(netns, ns, pod.Name, "eth0")
			_, err := cniConfig.AddNetworkList(context.Background(), list, rt)
			t.Cleanup(func() { _ = cniConfig.DelNetworkList(context.Background(), list, rt) })
			rules := netns.Run(t, "iptables-save") + netns.Run(t, "ip6tables-save")
			switch {
			case tc.addErr == "" && (err != nil || !strings.Contains(rules, "KUMA_MESH_INBOUND")):
				t.Fatalf("ADD: %v; rules:\n%s", err, rules)
			case tc.addErr != "" && (err == nil || err.Error() != tc.addErr):
				t.Errorf("ADD: %v\nwant: %s", err, tc.addErr)
			case tc.addErr != "" && strings.Contains(rules, "meshinit"):
				t.Errorf("a refused ADD installed rules:\n%s", rules)
			}

			// The validation container, as injected: its command line, its environment, and the
			// pod's annotation where the downward API puts it.
			v := podkit.MustContainer(t, pod, inject.ValidationName)
			if want := admitted.Digest([]byte(tc.created.Annotations[api.AnnotationTransparentProxyConfig])); !slices.Contains(v.Env,
				corev1.EnvVar{Name: admitted.Env, Value: want}) {
				t.Fatalf("the validation container's environment %v lacks %s=%s, the admitted document's", v.Env, admitted.Env, want)
			}
			doc := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(doc, []byte(pod.Annotations[api.AnnotationTransparentProxyConfig]), 0o644); err != nil {
				t.Fatal(err)
			}
			args := slices.Clone(v.Args)
			for i, a := range args {
				args[i] = strings.Replace(a, "/tmp/transparent-proxy/base/config.yaml", doc, 1)
			}
			if !slices.Equal(v.Command, []string{"/usr/bin/kumactl", "install", "transparent-proxy-validator"}) {
				t.Fatalf("the validation container's command: %v", v.Command)
			}
			cmd := exec.Command("ip", append([]string{"netns", "exec", netns.Name, kumactl, "install", "transparent-proxy-validator"}, args...)...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			for _, ev := range v.Env {
				cmd.Env = append(cmd.Env, ev.Name+"="+ev.Value)
			}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			switch want := tc.validateErr; {
			case want == "" && (err != nil || !strings.Contains(stdout.String(), "captured")):
				t.Errorf("the validator: %v\n%s%s", err, stdout.String(), stderr.String())
			case want != "" && (err == nil || stderr.String() != strings.Replace(want, "%s", doc, 1)):
				t.Errorf("the validator: %v\n%s\nwant: %s", err, stderr.String(), strings.Replace(want, "%s", doc, 1))
			}
		})
	}
}

// TestRewrittenConfigurationRefusedByKumaInit: kuma-init reads the pod's annotation through the
// downward API too. Run as injected (its command line and environment, the real binary as
// kumactl, in a network namespace), it refuses a rewritten document before touching anything, and
// installs the admitted one.
func TestRewrittenConfigurationRefusedByKumaInit(t *testing.T) {
	prereq.Root(t)
	prereq.Binary(t, "iptables-nft-restore")
	kumactl := filepath.Join(t.TempDir(), "kumactl")
	if err := os.Symlink(binaries.Build(t, "kuma-init"), kumactl); err != nil {
		t.Fatal(err)
	}
	pod := GatedPod("demo", "app")
	pod.Annotations = map[string]string{api.AnnotationIPFamilyMode: "ipv4"}
	res, err := (&inject.Injector{Config: testconfig.Default(), NativeSidecars: true}).Inject(pod, "demo",
		map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil {
		t.Fatal(err)
	}
	init := podkit.MustContainer(t, res.Pod, inject.InitName)
	doc := res.Pod.Annotations[api.AnnotationTransparentProxyConfig]
	for _, tc := range []struct {
		name, doc, wantErr string
	}{
		{"rewritten", Forged, "Error: --config %s: " + (&admitted.MismatchError{Got: admitted.Digest([]byte(Forged)), Want: admitted.Digest([]byte(doc))}).Error() + "\n"},
		{"as admitted", doc, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netns := netkit.NewBare(t)
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			args := slices.Concat(init.Command[1:], init.Args)
			for i, a := range args {
				args[i] = strings.Replace(a, "/tmp/transparent-proxy/base/config.yaml", path, 1)
			}
			cmd := exec.Command("ip", append([]string{"netns", "exec", netns.Name, kumactl}, args...)...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "XTABLES_LOCKFILE=" + filepath.Join(t.TempDir(), "xtables.lock")}
			for _, ev := range init.Env {
				if ev.Name != "XTABLES_LOCKFILE" {
					cmd.Env = append(cmd.Env, ev.Name+"="+ev.Value)
				}
			}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			rules := netns.Run(t, "iptables-save")
			switch {
			case tc.wantErr == "" && (err != nil || !strings.Contains(rules, "KUMA_MESH_INBOUND")):
				t.Errorf("kuma-init: %v\n%s%s\nrules:\n%s", err, stdout.String(), stderr.String(), rules)
			case tc.wantErr != "" && (err == nil || stderr.String() != strings.Replace(tc.wantErr, "%s", path, 1)):
				t.Errorf("kuma-init: %v\n%s\nwant: %s", err, stderr.String(), strings.Replace(tc.wantErr, "%s", path, 1))
			case tc.wantErr != "" && strings.Contains(rules, "meshinit"):
				t.Errorf("a refused kuma-init installed rules:\n%s", rules)
			}
		})
	}
}
