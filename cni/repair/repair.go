// Package repair looks after the pods of one node in CNI mode: a pod whose rules kuma-cni could not
// install, or whose validation container found none, is recreated when a controller would make it
// anew (the new pod's network is set up by kuma-cni), and otherwise left as it is and marked, with
// an event and a pod condition that say why, so that nobody wonders about a pod stuck in
// Init:CrashLoopBackOff or ContainerCreating.
//
// It runs in install-cni, once per node, rather than in the injector: install-cni hears of each
// kuma-cni call on its node (package relay), which the API server never sees, and watching only
// its node's pods (a field selector) costs each node little, where one controller for the cluster
// would have to hold every pod of it. The price is the DaemonSet's account's rights to delete pods
// and patch their status, as Istio's CNI agent has for the same repair.
//
// Two guards keep it from recreating pods in a loop when the cause is not a missing kuma-cni: a
// pod whose rules this node's kuma-cni is known to have installed is only marked (its validation
// fails for another reason, which a new pod would meet too), and the pods of one controller are
// recreated at most maxRecreations times in recreationWindow.
package repair

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/meshinit/meshinit/cni/relay"
)

// ValidationContainer is the injected validation container (webhook/inject's ValidationName,
// and Kuma's).
const ValidationContainer = "kuma-validation"

// ConditionType is the pod condition a marked pod gets, status False.
const ConditionType corev1.PodConditionType = "kuma.io/TrafficCaptured"

// Reasons: the events' and the condition's, and the reason label of the repairs metric.
const (
	ReasonValidationFailed   = "ValidationFailed"
	ReasonNetworkSetupFailed = "NetworkSetupFailed"
)

// Actions, the action label of the repairs metric.
const (
	ActionRecreated = "recreated"
	ActionMarked    = "marked"
)

const (
	// setupFailures is how many ADDs in a row must fail for a pod before it is repaired: the runtime
	// retries a failed ADD itself, so a passing cause (an API server restarting) heals alone.
	setupFailures = 3
	// maxRecreations in recreationWindow bound the pods of one controller recreated.
	maxRecreations   = 10
	recreationWindow = 10 * time.Minute
	// callTimeout bounds each call to the API server.
	callTimeout = 10 * time.Second
)

// Repairer repairs the pods of one node.
type Repairer struct {
	client   kubernetes.Interface
	node     string
	log      *slog.Logger
	recorder record.EventRecorder
	// Counted is told of each repair, for the metrics; nil is nothing.
	Counted func(action, reason string)

	pods listerscorev1.PodLister

	mu sync.Mutex
	// failures counts the failed ADDs in a row of each pod, by namespace/name.
	failures map[string]int
	// installed holds the pods whose rules kuma-cni installed on this node, by namespace/name,
	// which is what kuma-cni knows of a pod.
	installed map[string]bool
	// recreated holds when pods of each controller were recreated, by the controller's UID;
	// deleted the pods deleted, until the watch sees them go.
	recreated map[types.UID][]time.Time
	deleted   map[types.UID]bool
	now       func() time.Time
}

// New makes a repairer for node's pods.
func New(client kubernetes.Interface, node string, log *slog.Logger) *Repairer {
	return &Repairer{client: client, node: node, log: log, failures: map[string]int{}, installed: map[string]bool{},
		recreated: map[types.UID][]time.Time{}, deleted: map[types.UID]bool{}, now: time.Now}
}

// Run watches the node's pods until ctx ends, repairing those whose validation failed; Outcome
// feeds it kuma-cni's results.
func (r *Repairer) Run(ctx context.Context) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	r.mu.Lock()
	r.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "install-cni", Host: r.node})
	r.mu.Unlock()

	factory := informers.NewSharedInformerFactoryWithOptions(r.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", r.node).String()
	}))
	informer := factory.Core().V1().Pods()
	r.mu.Lock()
	r.pods = informer.Lister()
	r.mu.Unlock()
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.checkPod(ctx, obj) },
		UpdateFunc: func(_, obj any) { r.checkPod(ctx, obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				r.forget(pod)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

func (r *Repairer) forget(pod *corev1.Pod) {
	key := pod.Namespace + "/" + pod.Name
	r.mu.Lock()
	delete(r.failures, key)
	delete(r.installed, key)
	delete(r.deleted, pod.UID)
	r.mu.Unlock()
}

// Outcome takes one kuma-cni result: ADDs that installed a pod's rules, and ADDs that failed.
func (r *Repairer) Outcome(ctx context.Context, o relay.Outcome) {
	if o.Command != "ADD" || o.Namespace == "" || o.Pod == "" {
		return
	}
	key := o.Namespace + "/" + o.Pod
	r.mu.Lock()
	switch o.Result {
	case relay.ResultFailed:
		r.failures[key]++
	default:
		delete(r.failures, key)
		if o.Result == relay.ResultInstalled {
			r.installed[key] = true
		}
	}
	failed, pods := r.failures[key], r.pods
	r.mu.Unlock()
	if failed < setupFailures || pods == nil {
		return
	}
	pod, err := pods.Pods(o.Namespace).Get(o.Pod)
	if err != nil {
		return // not on this node (yet): kuma-cni named a pod the watch has not seen
	}
	r.repair(ctx, pod, ReasonNetworkSetupFailed, fmt.Sprintf("kuma-cni failed to set up its network %d times in a row: %s", failed, o.Error))
}

// checkPod repairs pod if its validation container failed.
func (r *Repairer) checkPod(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if why, failed := ValidationFailed(pod); failed {
		r.repair(ctx, pod, ReasonValidationFailed, why)
	}
}

// ValidationFailed says whether pod's validation container failed and is failing still: it ended
// with an error and did not succeed since.
func ValidationFailed(pod *corev1.Pod) (string, bool) {
	for _, s := range pod.Status.InitContainerStatuses {
		if s.Name != ValidationContainer {
			continue
		}
		t := s.State.Terminated
		if t == nil && s.State.Waiting != nil {
			t = s.LastTerminationState.Terminated
		}
		if t == nil || t.ExitCode == 0 {
			return "", false
		}
		msg := strings.TrimSpace(t.Message)
		if msg == "" {
			msg = t.Reason
		}
		return fmt.Sprintf("the %s container exited %d, so the pod's traffic is not captured: %s", ValidationContainer, t.ExitCode, msg), true
	}
	return "", false
}

// repair recreates pod or marks it, as decide says.
func (r *Repairer) repair(ctx context.Context, pod *corev1.Pod, reason, why string) {
	key := pod.Namespace + "/" + pod.Name
	r.mu.Lock()
	installed, deleted := r.installed[key], r.deleted[pod.UID]
	r.mu.Unlock()
	if deleted {
		return
	}
	d := r.decide(pod, reason, installed)
	log := r.log.With("pod", key, "reason", reason, "why", why)
	switch d.action {
	case "":
		return
	case ActionRecreated:
		r.event(pod, corev1.EventTypeWarning, reason, "Recreating the pod: "+why+"; "+d.note)
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		// The UID: a pod made anew under the same name (a StatefulSet's) is not this one.
		err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			log.Error("recreating the pod failed", "error", err)
			return
		}
		r.mu.Lock()
		r.recreated[d.owner] = append(r.recreated[d.owner], r.now())
		r.deleted[pod.UID] = true
		r.mu.Unlock()
		log.Info("recreating the pod", "note", d.note)
	case ActionMarked:
		if marked(pod, reason) {
			return
		}
		r.event(pod, corev1.EventTypeWarning, reason, "Not recreated: "+why+"; "+d.note)
		if err := r.mark(ctx, pod, reason, why+"; "+d.note); err != nil {
			log.Error("marking the pod failed", "error", err)
			return
		}
		log.Warn("marked the pod, which is not recreated", "note", d.note)
	}
	if r.Counted != nil {
		r.Counted(d.action, reason)
	}
}

func (r *Repairer) event(pod *corev1.Pod, kind, reason, msg string) {
	r.mu.Lock()
	rec := r.recorder
	r.mu.Unlock()
	if rec != nil {
		rec.Event(pod, kind, reason, msg)
	}
}

// decision is what to do with a pod to repair.
type decision struct {
	action string
	note   string
	// owner is the controller whose pod is recreated.
	owner types.UID
}

// decide says what to do with a pod to repair: recreate it when its controller makes pods anew,
// and nothing keeps it from doing so in a loop; mark it otherwise; nothing when it is going away or
// marked already.
func (r *Repairer) decide(pod *corev1.Pod, reason string, installed bool) decision {
	mark := func(note string) decision { return decision{action: ActionMarked, note: note} }
	if pod.DeletionTimestamp != nil {
		return decision{}
	}
	owner := metav1.GetControllerOf(pod)
	switch {
	case pod.Spec.RestartPolicy == corev1.RestartPolicyNever || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		// A Job's pod with restartPolicy Never fails with its validation container: the Job counts
		// the failure and makes its next pod itself. Deleting it, even before kubelet says Failed,
		// would take that record away.
		return mark("the pod does not restart its containers (restartPolicy Never) or has ended, and deleting it would erase what its controller, if any, counts")
	case owner == nil:
		return mark("no controller would make it anew: delete it to start it again")
	case owner.Kind == "Node":
		return mark("a static pod, which its node's kubelet keeps")
	case reason == ReasonValidationFailed && installed:
		return mark("kuma-cni installed its rules on this node, so a new pod would fail alike: see the validation container's log")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	recent := r.recreated[owner.UID][:0]
	for _, at := range r.recreated[owner.UID] {
		if r.now().Sub(at) < recreationWindow {
			recent = append(recent, at)
		}
	}
	r.recreated[owner.UID] = recent
	if len(recent) >= maxRecreations {
		return mark(fmt.Sprintf("%d pods of %s %s were recreated in the last %v already, and more could loop", len(recent), owner.Kind, owner.Name, recreationWindow))
	}
	return decision{action: ActionRecreated, owner: owner.UID, note: fmt.Sprintf("%s %s makes it anew, and kuma-cni sets the new pod up", owner.Kind, owner.Name)}
}

// marked reports whether pod carries the condition for reason already.
func marked(pod *corev1.Pod, reason string) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == ConditionType {
			return c.Status == corev1.ConditionFalse && c.Reason == reason
		}
	}
	return false
}

// mark sets the condition on the pod's status; kubelet keeps conditions of types it does not own.
func (r *Repairer) mark(ctx context.Context, pod *corev1.Pod, reason, msg string) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{{
		Type: ConditionType, Status: corev1.ConditionFalse, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(r.now()),
	}}}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err = r.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}
