package plugin

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/admitted"
)

// fakePods answers lookups from a map, and counts them.
type fakePods struct {
	pods    map[string]*Pod
	lookups int
}

func (f *fakePods) Pod(_ context.Context, namespace, name string) (*Pod, error) {
	f.lookups++
	if p, ok := f.pods[namespace+"/"+name]; ok {
		return p, nil
	}
	return nil, errNotFound
}

func podWith(annotations map[string]string) *Pod {
	p := &Pod{}
	p.Metadata.Annotations = annotations
	return p
}

const netconf = `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni","log_level":"error",
	"kubernetes":{"kubeconfig":"/etc/cni/net.d/kuma-cni-kubeconfig","exclude_namespaces":["kube-system"]}}`

func cmdArgs(conf, cniArgs string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "c1", Netns: "/var/run/netns/x", IfName: "eth0", Args: cniArgs, StdinData: []byte(conf)}
}

func TestPodConfig(t *testing.T) {
	doc, err := api.DefaultTransparentProxyConfig().MarshalCompact()
	if err != nil {
		t.Fatal(err)
	}
	pods := &fakePods{pods: map[string]*Pod{
		"demo/meshed": podWith(map[string]string{api.AnnotationSidecarInjected: "true", api.AnnotationTransparentProxyConfig: string(doc)}),
		"demo/plain":  podWith(nil),
		"demo/broken": podWith(map[string]string{api.AnnotationSidecarInjected: "true", api.AnnotationTransparentProxyConfig: `{"redirect": 5}`}),
		"demo/named": podWith(map[string]string{api.AnnotationSidecarInjected: "true",
			api.AnnotationTransparentProxyConfig: `{"kumaDPUser":"kuma-dp"}`}),
	}}
	// sealed is an injected pod whose sidecar carries the digest of the admitted document.
	sealed := func(name, config string) {
		pod := podWith(map[string]string{api.AnnotationSidecarInjected: "true", api.AnnotationTransparentProxyConfig: config})
		c := container{Name: api.ContainerSidecar}
		c.Env = append(c.Env, struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		}{admitted.Env, admitted.Digest(doc)})
		pod.Spec.InitContainers = []container{c}
		pods.pods["demo/"+name] = pod
	}
	sealed("sealed", string(doc))
	forged := `{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`
	sealed("forged", forged)
	p := &Plugin{Pods: pods, Stderr: os.Stderr}
	for _, tc := range []struct {
		name    string
		args    string
		handled bool
		wantErr string
	}{
		{name: "an injected pod", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=meshed", handled: true},
		{name: "an injected pod whose document is the one admitted", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=sealed", handled: true},
		{name: "an injected pod whose document was rewritten after admission", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=forged",
			wantErr: "kuma-cni: pod demo/forged: " + (&admitted.MismatchError{Got: admitted.Digest([]byte(forged)), Want: admitted.Digest(doc)}).Error()},
		{name: "a pod without injection", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=plain"},
		{name: "not a Kubernetes pod", args: ""},
		{name: "an excluded namespace", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns"},
		{name: "a pod the API server does not know", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=gone",
			wantErr: "kuma-cni: pod demo/gone: no such pod"},
		{name: "a malformed configuration", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=broken",
			wantErr: "kuma-cni: pod demo/broken: annotation traffic.kuma.io/transparent-proxy-config:\nredirect: \"5\" is not an object"},
		{name: "a proxy user by name, which the node cannot look up", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=named",
			wantErr: "kuma-cni: pod demo/named: annotation traffic.kuma.io/transparent-proxy-config:\n" +
				`kumaDPUser: "kuma-dp" is not a UID, and kuma-cni runs on the node, which does not know the pod's user names; accepted: a UID, such as 5678`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := p.begin("ADD", cmdArgs(netconf, tc.args))
			if err != nil {
				t.Fatal(err)
			}
			r, err := p.podRules(c)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want it to start with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || (r != nil) != tc.handled {
				t.Errorf("rules %v, error %v; want handled %v", r, err, tc.handled)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	p := &Plugin{Pods: &fakePods{}}
	for _, tc := range []struct {
		conf, args, env, want string
	}{
		{conf: `{`, want: "kuma-cni: the network configuration is not JSON"},
		{conf: strings.Replace(netconf, `["kube-system"]`, `"kube-system"`, 1),
			want: "kuma-cni: the network configuration's kubernetes.exclude_namespaces is a JSON string; accepted: an array"},
		{conf: strings.Replace(netconf, `"log_level"`, `"prevResult":{"cniVersion":"1.0.0","ips":"10.0.0.2"},"log_level"`, 1),
			want: "kuma-cni: the network configuration's prevResult.ips is a JSON string; accepted: an array"},
		{conf: strings.Replace(netconf, `"error"`, `"loud"`, 1), want: `kuma-cni: log_level "loud" is not a log level; accepted: off, debug, info, warn or error`},
		{conf: netconf, env: "verbose", want: `kuma-cni: CNI_LOG_LEVEL "verbose" is not a log level`},
		{conf: netconf, args: "K8S_POD_NAME", want: `kuma-cni: CNI_ARGS "K8S_POD_NAME": invalid pair "K8S_POD_NAME"; accepted: KEY=value pairs separated by ';'`},
		{conf: netconf, args: "K8S_POD_NAMESPACE=../../api/v1/secrets;K8S_POD_NAME=app/../x", want: `kuma-cni: CNI_ARGS "K8S_POD_NAMESPACE=../../api/v1/secrets;K8S_POD_NAME=app/../x": ` +
			`K8S_POD_NAMESPACE: "../../api/v1/secrets" is not a namespace name; accepted: a namespace name such as kube-system` + "\n" +
			`K8S_POD_NAME: "app/../x" is not a pod name; accepted: ` + api.FormPodName},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Setenv("CNI_LOG_LEVEL", tc.env)
			if _, err := p.begin("ADD", cmdArgs(tc.conf, tc.args)); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %v, want it to start with %q", err, tc.want)
			}
		})
	}
}

// TestKumasNetconf: the values Kuma documents and its install-cni writes are accepted: log_level
// off, info and debug (also as CNI_LOG_LEVEL), and cni_bin_dir in the kubernetes block.
func TestKumasNetconf(t *testing.T) {
	p := &Plugin{Pods: &fakePods{}}
	kuma := `{"cniVersion":"0.3.1","name":"kuma-cni","type":"kuma-cni","log_level":"LEVEL",
		"kubernetes":{"kubeconfig":"/etc/cni/net.d/ZZZ-kuma-cni-kubeconfig","cni_bin_dir":"/opt/cni/bin","exclude_namespaces":["kube-system"]}}`
	for _, level := range []string{"off", "info", "debug"} {
		t.Run(level, func(t *testing.T) {
			t.Setenv("CNI_LOG_LEVEL", "")
			c, err := p.begin("ADD", cmdArgs(strings.Replace(kuma, "LEVEL", level, 1), "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=x"))
			if err != nil {
				t.Fatal(err)
			}
			if c.conf.Kubernetes.CNIBinDir != "/opt/cni/bin" {
				t.Errorf("cni_bin_dir read as %q", c.conf.Kubernetes.CNIBinDir)
			}
			t.Setenv("CNI_LOG_LEVEL", level)
			if _, err := p.begin("ADD", cmdArgs(netconf, "")); err != nil {
				t.Errorf("CNI_LOG_LEVEL=%s: %v", level, err)
			}
		})
	}
}

// FuzzParse gives the plugin any network configuration and CNI_ARGS: it must answer with an error
// or a parsed call, never panic.
func FuzzParse(f *testing.F) {
	p := &Plugin{Pods: &fakePods{}, Stderr: os.Stderr}
	f.Fuzz(func(t *testing.T, conf []byte, args string) {
		c, err := p.begin("ADD", &skel.CmdArgs{StdinData: conf, Args: args})
		if c == nil || (err == nil && c.conf == nil) {
			t.Fatal("no call, or no error and no configuration")
		}
	})
}
