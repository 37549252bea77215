package plugin

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
)

// TestOwnNetNSRefused: an injected pod whose CNI_NETNS is kuma-cni's own namespace gets no rules
// and a failed ADD. kuma-cni's "own" namespace is a test namespace here, so that nothing could
// reach the machine's if the check failed.
func TestOwnNetNSRefused(t *testing.T) {
	prereq.Root(t)
	own := netkit.NewBare(t)
	doc, err := api.DefaultTransparentProxyConfig().MarshalCompact()
	if err != nil {
		t.Fatal(err)
	}
	pods := &fakePods{pods: map[string]*Pod{
		"demo/meshed": podWith(map[string]string{api.AnnotationSidecarInjected: "true", api.AnnotationTransparentProxyConfig: string(doc)}),
	}}
	p := &Plugin{Pods: pods, OwnNetNS: own.Path}
	for _, cmd := range []struct {
		name string
		run  func(*Plugin, string) error
	}{
		{"ADD", func(p *Plugin, netns string) error { return p.Add(withNetNS(netns)) }},
		{"CHECK", func(p *Plugin, netns string) error { return p.Check(withNetNS(netns)) }},
	} {
		err := cmd.run(p, own.Path)
		want := `kuma-cni: pod demo/meshed: CNI_NETNS "` + own.Path + `" is kuma-cni's own network namespace (the node's)`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want it to start with %q", cmd.name, err, want)
		}
	}
	if rules := own.Run(t, "iptables-save") + own.Run(t, "ip6tables-save"); strings.Contains(rules, "KUMA_MESH") {
		t.Errorf("rules were installed in kuma-cni's own namespace:\n%s", rules)
	}
}

func withNetNS(netns string) *skel.CmdArgs {
	a := cmdArgs(netconf, "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=meshed")
	a.Netns = netns
	return a
}
