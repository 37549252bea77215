package repair

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/cni/relay"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/webhook/inject"
)

func TestValidationContainerIsTheInjectorsName(t *testing.T) {
	if ValidationContainer != inject.ValidationName {
		t.Errorf("ValidationContainer %q, the injector's %q", ValidationContainer, inject.ValidationName)
	}
}

func TestValidationFailed(t *testing.T) {
	failed := &corev1.ContainerStateTerminated{ExitCode: 1, Message: "ipv4 inbound: FAILED"}
	for _, tc := range []struct {
		name   string
		status corev1.ContainerStatus
		want   bool
	}{
		{"failed", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: failed}}, true},
		{"failing, waiting to restart", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: failed}}, true},
		{"passed after failing", corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}},
			LastTerminationState: corev1.ContainerState{Terminated: failed}}, false},
		{"running", corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, false},
		{"waiting to start", corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.status.Name = ValidationContainer
			pod := &corev1.Pod{Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{tc.status}}}
			why, got := ValidationFailed(pod)
			if got != tc.want || (got && !strings.Contains(why, "ipv4 inbound: FAILED")) {
				t.Errorf("%v, %q; want %v", got, why, tc.want)
			}
		})
	}
}

func owned(kind string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "demo", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "apps/v1", Kind: kind, Name: "web", UID: types.UID("owner-" + kind), Controller: ptr.To(true)}}}}
}

// TestDecide: recreated when a controller makes it anew; marked otherwise, or when a new pod would
// fail alike, or past the bound on one controller's recreations.
func TestDecide(t *testing.T) {
	r := New(nil, "n1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ended := owned("Job")
	ended.Status.Phase = corev1.PodFailed
	never := owned("Job")
	never.Spec.RestartPolicy = corev1.RestartPolicyNever
	gone := owned("ReplicaSet")
	gone.DeletionTimestamp = ptr.To(metav1.Now())
	for _, tc := range []struct {
		name      string
		pod       *corev1.Pod
		reason    string
		installed bool
		want      string
	}{
		{"a ReplicaSet's", owned("ReplicaSet"), ReasonValidationFailed, false, ActionRecreated},
		{"a StatefulSet's", owned("StatefulSet"), ReasonNetworkSetupFailed, false, ActionRecreated},
		{"a running Job's", owned("Job"), ReasonValidationFailed, false, ActionRecreated},
		{"a Job's that has ended", ended, ReasonValidationFailed, false, ActionMarked},
		{"a Job's with restartPolicy Never, before kubelet says it failed", never, ReasonValidationFailed, false, ActionMarked},
		{"a bare pod", &corev1.Pod{}, ReasonValidationFailed, false, ActionMarked},
		{"a static pod", owned("Node"), ReasonValidationFailed, false, ActionMarked},
		{"rules kuma-cni installed", owned("ReplicaSet"), ReasonValidationFailed, true, ActionMarked},
		{"going away", gone, ReasonValidationFailed, false, ""},
	} {
		if got := r.decide(tc.pod, tc.reason, tc.installed); got.action != tc.want {
			t.Errorf("%s: %q (%s), want %q", tc.name, got.action, got.note, tc.want)
		}
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	r.recreated["owner-ReplicaSet"] = make([]time.Time, maxRecreations)
	for i := range maxRecreations {
		r.recreated["owner-ReplicaSet"][i] = now.Add(-time.Minute)
	}
	if d := r.decide(owned("ReplicaSet"), ReasonValidationFailed, false); d.action != ActionMarked || !strings.Contains(d.note, "more could loop") {
		t.Errorf("past the bound: %+v", d)
	}
	now = now.Add(recreationWindow)
	if d := r.decide(owned("ReplicaSet"), ReasonValidationFailed, false); d.action != ActionRecreated {
		t.Errorf("after the window: %+v", d)
	}
}

// TestRepairer runs the repairer against a real API server, with pods set up as kubelet reports
// them: each is recreated (deleted, for its controller to make anew) or marked, as decide says.
func TestRepairer(t *testing.T) {
	env := kubeenv.Start(t)
	c := env.Client
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := New(cs, "n1", slog.New(slog.NewTextHandler(t.Output(), nil)))
	var mu sync.Mutex
	counted := map[string]int{}
	r.Counted = func(action, reason string) { mu.Lock(); counted[action+"/"+reason]++; mu.Unlock() }
	background.Run(t, "repair", func(ctx context.Context) error { return r.Run(ctx) })

	failedValidation := func(pod *corev1.Pod) {
		pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: ValidationContainer, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Message: "capture could not be proven"}}}}
	}
	web := createPod(t, c, "web-abc", "n1", "ReplicaSet", corev1.RestartPolicyAlways, failedValidation)
	bare := createPod(t, c, "bare", "n1", "", corev1.RestartPolicyAlways, failedValidation)
	job := createPod(t, c, "job-xyz", "n1", "Job", corev1.RestartPolicyNever, func(p *corev1.Pod) {
		failedValidation(p)
		p.Status.Phase = corev1.PodFailed
	})
	other := createPod(t, c, "elsewhere", "n2", "ReplicaSet", corev1.RestartPolicyAlways, failedValidation)
	fine := createPod(t, c, "fine", "n1", "ReplicaSet", corev1.RestartPolicyAlways, nil)
	setup := createPod(t, c, "setup-failing", "n1", "ReplicaSet", corev1.RestartPolicyAlways, nil)

	poll.Until(t, "the ReplicaSet's pod is deleted", func() (bool, error) { return deleted(t, c, web), nil })
	for _, p := range []*corev1.Pod{bare, job} {
		poll.Until(t, p.Name+" is marked", func() (bool, error) { return markedAs(t, c, p, ReasonValidationFailed), nil })
	}
	// Three failed ADDs in a row; a success between would start the count again.
	for i := range setupFailures {
		if deleted(t, c, setup) {
			t.Fatalf("recreated after %d failed ADDs", i)
		}
		r.Outcome(t.Context(), relay.Outcome{Command: "ADD", Result: relay.ResultFailed, Namespace: "demo", Pod: setup.Name, Error: "no answer"})
	}
	poll.Until(t, "the pod whose ADD keeps failing is deleted", func() (bool, error) { return deleted(t, c, setup), nil })
	for _, p := range []*corev1.Pod{other, fine} {
		if deleted(t, c, p) || markedAs(t, c, p, ReasonValidationFailed) {
			t.Errorf("%s, which is fine or on another node, was repaired", p.Name)
		}
	}
	var events corev1.EventList
	poll.Until(t, "an event for each repair", func() (bool, error) {
		if err := c.List(t.Context(), &events, client.InNamespace("demo")); err != nil {
			return false, err
		}
		return len(events.Items) >= 4, nil
	})
	for _, e := range events.Items {
		if e.Source.Component != "install-cni" || e.Source.Host != "n1" || e.Type != corev1.EventTypeWarning {
			t.Errorf("event %+v", e)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"recreated/ValidationFailed": 1, "recreated/NetworkSetupFailed": 1, "marked/ValidationFailed": 2}
	if fmt.Sprint(counted) != fmt.Sprint(want) {
		t.Errorf("repairs counted %v, want %v", counted, want)
	}
}

func createPod(t *testing.T, c client.Client, name, node, ownerKind string, restart corev1.RestartPolicy, status func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Spec: corev1.PodSpec{NodeName: node, RestartPolicy: restart,
		InitContainers: []corev1.Container{{Name: ValidationContainer, Image: "kuma-init"}}, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	if ownerKind != "" {
		apiVersion := "apps/v1"
		if ownerKind == "Job" {
			apiVersion = batchv1.SchemeGroupVersion.String()
		}
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion, Kind: ownerKind, Name: name + "-owner",
			UID: types.UID(fmt.Sprintf("uid-%s", name)), Controller: ptr.To(true)}}
	}
	if err := c.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if status != nil {
		status(pod)
		if err := c.Status().Update(t.Context(), pod); err != nil {
			t.Fatal(err)
		}
	}
	return pod
}

func deleted(t *testing.T, c client.Client, pod *corev1.Pod) bool {
	t.Helper()
	var p corev1.Pod
	err := c.Get(t.Context(), client.ObjectKeyFromObject(pod), &p)
	// Deleted, or deleting: without a kubelet here a graceful delete leaves it terminating.
	return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
}

func markedAs(t *testing.T, c client.Client, pod *corev1.Pod, reason string) bool {
	t.Helper()
	var p corev1.Pod
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(pod), &p); err != nil {
		return false
	}
	return marked(&p, reason)
}
