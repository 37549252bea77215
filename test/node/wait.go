package node

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// waitTimeout bounds a wait that has no deadline of its own.
const waitTimeout = 2 * time.Minute

// until lists and then watches the objects of lw (one, by name) until cond holds for one, and
// returns it then. Watching, not polling: each change is looked at as it happens. A watch that ends
// (the API server restarted, a timeout) is taken up again from a new list.
func until[T runtime.Object](ctx context.Context, lw cache.ListerWatcherWithContext, cond func(T) (bool, error)) (T, error) {
	var last T
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, waitTimeout)
		defer cancel()
	}
	check := func(obj runtime.Object) (bool, error) {
		o, ok := obj.(T)
		if !ok {
			return false, nil
		}
		last = o
		return cond(o)
	}
	for {
		list, err := lw.ListWithContext(ctx, metav1.ListOptions{})
		if err != nil {
			return last, err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return last, err
		}
		for _, item := range items {
			if done, err := check(item); done || err != nil {
				return last, err
			}
		}
		listMeta, err := meta.ListAccessor(list)
		if err != nil {
			return last, err
		}
		w, err := lw.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: listMeta.GetResourceVersion()})
		if err != nil {
			return last, err
		}
		done, err := func() (bool, error) {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return false, ctx.Err()
				case e, ok := <-w.ResultChan():
					if !ok || e.Type == watch.Error {
						return false, nil
					}
					if e.Type == watch.Deleted {
						return false, fmt.Errorf("deleted while waited for")
					}
					if done, err := check(e.Object); done || err != nil {
						return done, err
					}
				}
			}
		}()
		if done || err != nil {
			return last, err
		}
	}
}

func byName(name string) func(*metav1.ListOptions) {
	return func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
}

// WaitNodeReady waits until the node reports Ready.
func (n *Node) WaitNodeReady(ctx context.Context) error {
	return n.waitNode(ctx, func(node *corev1.Node) bool {
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	})
}

func (n *Node) waitNode(ctx context.Context, cond func(*corev1.Node) bool) error {
	kubelet := n.daemon("kubelet")
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// A kubelet that exits never makes the node Ready: stop waiting then, and say why.
	if kubelet != nil {
		go func() {
			select {
			case <-kubelet.exited:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	lw := cache.NewFilteredListWatchFromClient(n.Clientset.CoreV1().RESTClient(), "nodes", "", byName(Name))
	_, err := until(ctx, lw, func(node *corev1.Node) (bool, error) { return cond(node), nil })
	if err != nil && kubelet != nil {
		select {
		case <-kubelet.exited:
			return kubelet.exitedErr()
		default:
		}
	}
	if err != nil {
		return fmt.Errorf("waiting for node %s: %w", Name, err)
	}
	return nil
}

// WaitPodReady waits until a pod is Ready and returns it; a pod that fails, or a container that
// keeps failing to start, ends the wait with its status.
func (n *Node) WaitPodReady(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	lw := cache.NewFilteredListWatchFromClient(n.Clientset.CoreV1().RESTClient(), "pods", namespace, byName(name))
	pod, err := until(ctx, lw, func(p *corev1.Pod) (bool, error) {
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("pod ended: %s", p.Status.Phase)
		}
		for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
			for _, s := range list {
				if w := s.State.Waiting; w != nil && (w.Reason == "ErrImageNeverPull" || w.Reason == "CreateContainerError" ||
					w.Reason == "CreateContainerConfigError" || w.Reason == "InvalidImageName" || w.Reason == "CrashLoopBackOff") {
					return false, fmt.Errorf("container %s: %s: %s", s.Name, w.Reason, w.Message)
				}
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return pod, fmt.Errorf("waiting for pod %s/%s to be Ready: %w%s", namespace, name, err, describe(pod))
	}
	return pod, nil
}

// WaitJobComplete waits until a Job has completed and returns it; a Job that fails ends the wait.
func (n *Node) WaitJobComplete(ctx context.Context, namespace, name string) (*batchv1.Job, error) {
	lw := cache.NewFilteredListWatchFromClient(n.Clientset.BatchV1().RESTClient(), "jobs", namespace, byName(name))
	job, err := until(ctx, lw, func(j *batchv1.Job) (bool, error) {
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return true, nil
			case batchv1.JobFailed:
				return false, fmt.Errorf("job failed: %s: %s", c.Reason, c.Message)
			}
		}
		return false, nil
	})
	if err != nil {
		return job, fmt.Errorf("waiting for job %s/%s to complete: %w", namespace, name, err)
	}
	return job, nil
}

// WaitDeploymentAvailable waits until a Deployment's rollout is complete: every replica updated and
// available, as `kubectl rollout status` says it.
func (n *Node) WaitDeploymentAvailable(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
	lw := cache.NewFilteredListWatchFromClient(n.Clientset.AppsV1().RESTClient(), "deployments", namespace, byName(name))
	d, err := until(ctx, lw, func(d *appsv1.Deployment) (bool, error) {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want, nil
	})
	if err != nil {
		return d, fmt.Errorf("waiting for deployment %s/%s to be available: %w", namespace, name, err)
	}
	return d, nil
}

// CreateNamespace creates a namespace and waits until pods can be created in it: the controller
// manager has made its default ServiceAccount (the ServiceAccount admission refuses pods before)
// and its kube-root-ca.crt.
func (n *Node) CreateNamespace(ctx context.Context, name string, labels map[string]string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := n.Client.Create(ctx, ns); err != nil {
		return nil, err
	}
	sa := cache.NewFilteredListWatchFromClient(n.Clientset.CoreV1().RESTClient(), "serviceaccounts", name, byName("default"))
	if _, err := until(ctx, sa, func(*corev1.ServiceAccount) (bool, error) { return true, nil }); err != nil {
		return nil, fmt.Errorf("waiting for the default ServiceAccount of %s: %w", name, err)
	}
	cm := cache.NewFilteredListWatchFromClient(n.Clientset.CoreV1().RESTClient(), "configmaps", name, byName("kube-root-ca.crt"))
	if _, err := until(ctx, cm, func(*corev1.ConfigMap) (bool, error) { return true, nil }); err != nil {
		return nil, fmt.Errorf("waiting for kube-root-ca.crt in %s: %w", name, err)
	}
	return ns, nil
}

// describe says, for a failure message, where a pod's containers are.
func describe(p *corev1.Pod) string {
	if p == nil {
		return ""
	}
	s := fmt.Sprintf("\npod phase %s", p.Status.Phase)
	for _, c := range p.Status.Conditions {
		s += fmt.Sprintf("; %s=%s %s", c.Type, c.Status, c.Message)
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, c := range list {
			s += fmt.Sprintf("\ncontainer %s: ready=%v restarts=%d state=%+v", c.Name, c.Ready, c.RestartCount, c.State)
		}
	}
	return s
}
