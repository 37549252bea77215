// Command kuma-cni is meshinit's CNI plugin: chained after the cluster's own CNI, it installs an
// injected pod's transparent-proxy rules in the pod's network namespace on ADD.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni/plugin"
)

func main() {
	p := &plugin.Plugin{}
	skel.PluginMainFuncs(skel.CNIFuncs{Add: p.Add, Check: p.Check, Del: p.Del, Status: p.Status, GC: p.GC},
		plugin.Versions, "kuma-cni "+api.Version)
}
