// Package multustest installs Multus's NetworkAttachmentDefinition CRD into a test's API server,
// for the tests of the controller that keeps kuma-cni's definitions.
package multustest

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/yaml"

	"github.com/meshinit/meshinit/test/kubeenv"
)

// crd is the CRD as Multus's manifests define it: a namespaced kind whose spec holds one
// string, config, a CNI configuration in JSON.
const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: network-attachment-definitions.k8s.cni.cncf.io
spec:
  group: k8s.cni.cncf.io
  scope: Namespaced
  names:
    plural: network-attachment-definitions
    singular: network-attachment-definition
    kind: NetworkAttachmentDefinition
    shortNames: [net-attach-def]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            properties:
              config:
                description: a JSON-formatted CNI configuration
                type: string
`

// InstallCRD creates the CRD and waits until the API server serves the kind.
func InstallCRD(t testing.TB, env *kubeenv.Env) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(crd), &obj.Object); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		list, err := dc.ServerResourcesForGroupVersion("k8s.cni.cncf.io/v1")
		return err == nil && slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool {
			return r.Name == "network-attachment-definitions"
		}), nil
	})
	if err != nil {
		t.Fatalf("the API server does not serve network-attachment-definitions: %v", err)
	}
}
