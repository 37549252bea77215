// Command kube-scheduler is the upstream scheduler, built from the k8s.io/kubernetes module like
// kube-apiserver: test/node needs it because the pods of Deployments and Jobs have no nodeName.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream's
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics, as upstream's
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric, as upstream's
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
