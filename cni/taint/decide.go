package taint

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Effect is the effect of the taint the controller owns; its key is a setting
// (config.NodeTaintController.Key), and it has no value.
const Effect = corev1.TaintEffectNoSchedule

// change is what a decision does to the node's taints.
type change int

const (
	unchanged change = iota
	added
	removed
)

// decision is a node's taints as they should be, and why.
type decision struct {
	taints []corev1.Taint
	change change
	reason string
}

// decide says what node's taints should be, given its current taints, whether the CNI DaemonSet
// runs there (covered) and the CNI pods (pods on other nodes are ignored). A node the DaemonSet
// does not cover would never get a CNI pod, so it is never tainted. It never touches a taint
// other than ours, whose key is key.
func decide(key, node string, covered bool, taints []corev1.Taint, cniPods []corev1.Pod) decision {
	isOurs := ours(key)
	tainted := slices.ContainsFunc(taints, isOurs)
	if !covered {
		const reason = "the CNI DaemonSet does not run on the node (its node selector)"
		if tainted {
			return decision{taints: slices.DeleteFunc(slices.Clone(taints), isOurs), change: removed, reason: reason}
		}
		return decision{taints: taints, change: unchanged, reason: reason}
	}
	ready, reason := cniReady(node, cniPods)
	switch {
	case ready && tainted:
		return decision{taints: slices.DeleteFunc(slices.Clone(taints), isOurs), change: removed, reason: reason}
	case !ready && !tainted:
		return decision{taints: append(slices.Clone(taints), corev1.Taint{Key: key, Effect: Effect}), change: added, reason: reason}
	}
	return decision{taints: taints, change: unchanged, reason: reason}
}

// ours matches our taint by key and effect, which identify a taint: one registered with a value
// (by the chart's admission policy, or kubelet's --register-with-taints) is ours too.
func ours(key string) func(corev1.Taint) bool {
	return func(t corev1.Taint) bool { return t.Key == key && t.Effect == Effect }
}

// cniReady reports whether a CNI pod on node is ready, and why or why not.
func cniReady(node string, pods []corev1.Pod) (bool, string) {
	reason := "no CNI pod on the node"
	for i := range pods {
		pod := &pods[i]
		if pod.Spec.NodeName != node {
			continue
		}
		switch {
		case pod.DeletionTimestamp != nil:
			// A terminating pod may still report Ready, but it is going away.
			reason = fmt.Sprintf("CNI pod %s/%s is being deleted", pod.Namespace, pod.Name)
		case podReady(pod):
			return true, fmt.Sprintf("CNI pod %s/%s is ready", pod.Namespace, pod.Name)
		default:
			reason = fmt.Sprintf("CNI pod %s/%s is not ready", pod.Namespace, pod.Name)
		}
	}
	return false, reason
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
