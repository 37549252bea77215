// Package multus keeps a kuma-cni NetworkAttachmentDefinition in every namespace labelled
// kuma.io/sidecar-injection, whatever the label's value, as Kuma's control plane does.
//
// Where Multus runs kuma-cni (install-cni's standalone mode), the injector lists kuma-cni in each
// injected pod's k8s.v1.cni.cncf.io/networks, and Multus resolves that name to a
// NetworkAttachmentDefinition in the pod's namespace: without one, the pod does not start. The
// definitions created here carry no configuration, so Multus reads the file install-cni writes on
// every node, whose name field is kuma-cni. A definition already there, an operator's own with a
// configuration say, is never changed or deleted, nor is anything in unlabelled namespaces; one
// deleted while its namespace is labelled is created again. A namespace labelled "disabled" gets
// one too, as Kuma's docs promise, so that pods injected by their own label can start there.
//
// The controller runs in CNI mode only, and only where the API server serves Multus's CRD, which
// Enabled asks once at start: chained setups without Multus see nothing of it, and a CRD installed
// later takes effect when the injector restarts.
package multus
