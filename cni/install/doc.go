// Package install is the install-cni program of the kuma-cni DaemonSet: it copies kuma-cni onto
// the node, writes the kubeconfig kuma-cni reaches the API server with, chains kuma-cni into the
// node's network configuration (package conflist), keeps all three in place while it runs, and
// takes them out again when it is stopped because its DaemonSet is going (see Installer.Run): in a
// rollout they stay for the next pod. It also relays kuma-cni's log lines and results (package
// relay) into its own log and metrics, and repairs its node's pods (package repair).
//
// In standalone mode (CHAINED_CNI_PLUGIN=false) Multus runs kuma-cni as an extra attachment, for
// pods that list the kuma-cni NetworkAttachmentDefinition. That definition carries no
// configuration, so Multus looks in its conf dir, the net dir then, for a file whose name field is
// kuma-cni: install-cni writes that file (CNI_CONF_NAME, kuma-cni.conf by default) instead of
// touching any conflist, and keeps and removes it as it does the conflist entry.
//
// It watches three directories, never the files themselves, since providers and kubelet replace
// files by renaming new ones over them: the net dir (the conflist rewritten without kuma-cni, or
// another configuration earlier in name order, or kuma-cni's own file changed), the bin dir
// (kuma-cni removed or changed) and the service-account dir (kubelet rotates the token by swapping
// its ..data symlink). A change is acted on after a short settle time, by one pass that compares
// everything with what it should be and writes only what differs: its own writes, seen again,
// change nothing, so it never loops.
//
// GET /ready answers 200 while kuma-cni is installed, and 503 with the reason otherwise; GET
// /metrics, on its own address, serves install-cni's metrics.
package install
