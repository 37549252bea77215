// Package taint is the node taint controller. In CNI mode the transparent-proxy rules are
// installed by kuma-cni, so a pod scheduled onto a node before the node's kuma-cni DaemonSet pod
// is ready would start without them. The controller keeps such nodes tainted NodeReadiness:NoSchedule
// until a ready CNI pod runs there, and taints them again when it stops being ready or goes away;
// nodes registered with the taint (kubelet --register-with-taints) are handled alike. Only that
// taint is ever touched.
//
// The CNI DaemonSet's pods must tolerate the taint, or they could never schedule onto the nodes
// that wait for them.
package taint
