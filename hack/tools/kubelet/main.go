// Command kubelet is the upstream node agent, built from the k8s.io/kubernetes module like
// kube-apiserver, so that test/node runs pods on a real node without downloading release binaries.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream's
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics, as upstream's
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric, as upstream's
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
