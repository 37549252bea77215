// Package crds defines, for tests, the custom resources of other projects that meshinit's objects
// use: cert-manager's Certificate and issuers, and Multus's NetworkAttachmentDefinition.
package crds

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func define(group, kind, plural string, scope apiextensionsv1.ResourceScope, schema *apiextensionsv1.JSONSchemaProps) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural},
			Scope: scope,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: schema},
			}},
		},
	}
}

// anything is a schema that accepts any object: only the kind's name and scope matter.
func anything() *apiextensionsv1.JSONSchemaProps {
	preserve := true
	return &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}
}

// CertManager are cert-manager's Certificate, Issuer and ClusterIssuer (cert-manager.io/v1).
func CertManager() []*apiextensionsv1.CustomResourceDefinition {
	return []*apiextensionsv1.CustomResourceDefinition{
		define("cert-manager.io", "Certificate", "certificates", apiextensionsv1.NamespaceScoped, anything()),
		define("cert-manager.io", "Issuer", "issuers", apiextensionsv1.NamespaceScoped, anything()),
		define("cert-manager.io", "ClusterIssuer", "clusterissuers", apiextensionsv1.ClusterScoped, anything()),
	}
}

// NetworkAttachmentDefinition is Multus's (k8s.cni.cncf.io/v1), as its manifests define it: a
// spec of one string, config, a CNI configuration in JSON.
func NetworkAttachmentDefinition() *apiextensionsv1.CustomResourceDefinition {
	return define("k8s.cni.cncf.io", "NetworkAttachmentDefinition", "network-attachment-definitions", apiextensionsv1.NamespaceScoped,
		&apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"metadata":   {Type: "object"},
			"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"config": {Type: "string", Description: "a JSON-formatted CNI configuration"},
			}},
		}})
}

// Install creates the CRDs on a running API server and waits until it serves them.
func Install(t testing.TB, config *rest.Config, defs ...*apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	if _, err := envtest.InstallCRDs(config, envtest.CRDInstallOptions{CRDs: defs}); err != nil {
		t.Fatalf("installing CRDs: %v", err)
	}
}
