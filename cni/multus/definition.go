package multus

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshinit/meshinit/cni"
)

// NetworkName is the NetworkAttachmentDefinition kept in labelled namespaces, which the injector
// lists in k8s.v1.cni.cncf.io/networks.
const NetworkName = cni.NetworkName

// Multus's NetworkAttachmentDefinition, known here by its group, version, kind and resource only:
// the controller needs no more of it than metadata, so no client library of its own.
var definitionKind = schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}

const definitionResource = "network-attachment-definitions"

// The label the created definitions carry, saying who made them.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "meshinit"
)

// definitionMetadata is an empty NetworkAttachmentDefinition as the cache and the controller's
// watch know it: metadata only.
func definitionMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(definitionKind)
	return m
}

// definition is the NetworkAttachmentDefinition created in namespace: an empty spec, so that
// Multus reads the configuration install-cni writes on the node.
func definition(namespace string) *unstructured.Unstructured {
	d := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{}}}
	d.SetGroupVersionKind(definitionKind)
	d.SetNamespace(namespace)
	d.SetName(NetworkName)
	d.SetLabels(map[string]string{managedByLabel: managedBy})
	return d
}
