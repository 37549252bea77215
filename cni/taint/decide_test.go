package taint

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecide(t *testing.T) {
	const key = "NodeReadiness"
	ours := corev1.Taint{Key: key, Effect: Effect}
	other := corev1.Taint{Key: "example.com/dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	// A taint with our key but another effect is someone else's.
	sameKeyOtherEffect := corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute}
	pod := func(name, node string, ready corev1.ConditionStatus) corev1.Pod {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name},
			Spec:       corev1.PodSpec{NodeName: node},
			Status:     corev1.PodStatus{Phase: corev1.PodPending},
		}
		if ready != "" {
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: ready},
			}
		}
		return p
	}
	deleting := func(p corev1.Pod) corev1.Pod {
		now := metav1.Now()
		p.DeletionTimestamp = &now
		return p
	}

	const uncovered = "the CNI DaemonSet does not run on the node (its node selector)"
	for _, tc := range []struct {
		name      string
		uncovered bool
		taints    []corev1.Taint
		pods      []corev1.Pod
		want      []corev1.Taint
		change    change
		reason    string
	}{
		{name: "no CNI pod", want: []corev1.Taint{ours}, change: added, reason: "no CNI pod on the node"},
		{name: "pending pod", pods: []corev1.Pod{pod("cni-a", "n1", "")},
			want: []corev1.Taint{ours}, change: added, reason: "CNI pod kube-system/cni-a is not ready"},
		{name: "ready pod, tainted", taints: []corev1.Taint{ours}, pods: []corev1.Pod{pod("cni-a", "n1", corev1.ConditionTrue)},
			want: nil, change: removed, reason: "CNI pod kube-system/cni-a is ready"},
		{name: "ready pod, untainted", pods: []corev1.Pod{pod("cni-a", "n1", corev1.ConditionTrue)},
			want: nil, change: unchanged, reason: "CNI pod kube-system/cni-a is ready"},
		{name: "not-ready pod", pods: []corev1.Pod{pod("cni-a", "n1", corev1.ConditionFalse)},
			want: []corev1.Taint{ours}, change: added, reason: "CNI pod kube-system/cni-a is not ready"},
		{name: "not-ready pod, already tainted", taints: []corev1.Taint{ours}, pods: []corev1.Pod{pod("cni-a", "n1", corev1.ConditionFalse)},
			want: []corev1.Taint{ours}, change: unchanged, reason: "CNI pod kube-system/cni-a is not ready"},
		{name: "ready pod being deleted", pods: []corev1.Pod{deleting(pod("cni-a", "n1", corev1.ConditionTrue))},
			want: []corev1.Taint{ours}, change: added, reason: "CNI pod kube-system/cni-a is being deleted"},
		{name: "two pods, one ready", taints: []corev1.Taint{ours},
			pods: []corev1.Pod{deleting(pod("cni-old", "n1", corev1.ConditionTrue)), pod("cni-new", "n1", corev1.ConditionTrue)},
			want: nil, change: removed, reason: "CNI pod kube-system/cni-new is ready"},
		{name: "other taints kept when adding", taints: []corev1.Taint{other, sameKeyOtherEffect},
			want: []corev1.Taint{other, sameKeyOtherEffect, ours}, change: added, reason: "no CNI pod on the node"},
		{name: "other taints kept when removing", taints: []corev1.Taint{other, ours, sameKeyOtherEffect},
			pods: []corev1.Pod{pod("cni-a", "n1", corev1.ConditionTrue)},
			want: []corev1.Taint{other, sameKeyOtherEffect}, change: removed, reason: "CNI pod kube-system/cni-a is ready"},
		{name: "registered with our taint, no pod yet", taints: []corev1.Taint{other, ours},
			want: []corev1.Taint{other, ours}, change: unchanged, reason: "no CNI pod on the node"},
		{name: "registered with our taint with a value", taints: []corev1.Taint{{Key: key, Value: "cni", Effect: Effect}},
			pods: []corev1.Pod{pod("cni-a", "n1", corev1.ConditionTrue)},
			want: nil, change: removed, reason: "CNI pod kube-system/cni-a is ready"},
		{name: "ready CNI pod on another node", pods: []corev1.Pod{pod("cni-b", "n2", corev1.ConditionTrue)},
			want: []corev1.Taint{ours}, change: added, reason: "no CNI pod on the node"},
		{name: "node the DaemonSet does not cover", uncovered: true, taints: []corev1.Taint{other},
			want: []corev1.Taint{other}, change: unchanged, reason: uncovered},
		{name: "node left the DaemonSet's cover while tainted", uncovered: true, taints: []corev1.Taint{other, ours},
			want: []corev1.Taint{other}, change: removed, reason: uncovered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]corev1.Taint(nil), tc.taints...)
			got := decide(key, "n1", !tc.uncovered, tc.taints, tc.pods)
			if diff := cmp.Diff(tc.want, got.taints, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
			if got.change != tc.change {
				t.Errorf("change = %d, want %d", got.change, tc.change)
			}
			if got.reason != tc.reason {
				t.Errorf("reason = %q, want %q", got.reason, tc.reason)
			}
			// The input is the cached node's: it must not be modified.
			if diff := cmp.Diff(before, tc.taints, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("input taints modified (-before +after):\n%s", diff)
			}
		})
	}
}
