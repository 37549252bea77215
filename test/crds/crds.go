// Package crds defines, for tests, the custom resources of other projects that meshinit's objects
// use: cert-manager's Certificate and issuers, and Multus's NetworkAttachmentDefinition. Only
// their names and scope matter to the API server here; their schemas accept any content.
package crds

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func define(group, kind, plural string, scope apiextensionsv1.ResourceScope) *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural},
			Scope: scope,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: &preserve,
				}},
			}},
		},
	}
}

// CertManager are cert-manager's Certificate, Issuer and ClusterIssuer (cert-manager.io/v1).
func CertManager() []*apiextensionsv1.CustomResourceDefinition {
	return []*apiextensionsv1.CustomResourceDefinition{
		define("cert-manager.io", "Certificate", "certificates", apiextensionsv1.NamespaceScoped),
		define("cert-manager.io", "Issuer", "issuers", apiextensionsv1.NamespaceScoped),
		define("cert-manager.io", "ClusterIssuer", "clusterissuers", apiextensionsv1.ClusterScoped),
	}
}

// NetworkAttachmentDefinition is Multus's (k8s.cni.cncf.io/v1).
func NetworkAttachmentDefinition() *apiextensionsv1.CustomResourceDefinition {
	return define("k8s.cni.cncf.io", "NetworkAttachmentDefinition", "network-attachment-definitions", apiextensionsv1.NamespaceScoped)
}
