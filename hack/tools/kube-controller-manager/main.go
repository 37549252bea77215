// Command kube-controller-manager is the upstream controller manager, built from the k8s.io/kubernetes
// module like kube-apiserver: test/node needs it for Deployments, Jobs, endpoints, service accounts
// and the kube-root-ca.crt of every namespace.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as upstream's

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream's
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics, as upstream's
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric, as upstream's
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
