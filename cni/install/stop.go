package install

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshinit/meshinit/cni"
)

// stopTimeout bounds the decision at stop, retries included: the chart gives the pod 10s to stop,
// and the uninstall that may follow needs some of them.
const stopTimeout = 5 * time.Second

// leaving decides, when install-cni is told to stop, whether kuma-cni leaves the node with it.
//
// Kubelet stops install-cni alike when its DaemonSet rolls out a new version, when the pod is
// evicted or restarted, and when the DaemonSet is deleted. Only the last is an uninstall: in the
// others a successor takes over, and a kuma-cni taken out meanwhile would let pods start without
// their rules. So install-cni asks the API server about the DaemonSet that owns its pod, which is
// what changed in each case; a Helm hook or a preStop could tell neither a `kubectl delete`, nor
// an Argo prune, nor a rollout apart. kuma-cni leaves when:
//   - the DaemonSet is gone, is being deleted, is another one of the same name (a new UID), or
//     no longer selects this node (its node selector changed);
//   - the API server refuses install-cni's own credentials (401, 403): its account or role is
//     gone, as in an uninstall, and kuma-cni, which uses the same account, could not work either.
//
// It stays while the DaemonSet is there and selects the node; and when the API server cannot be
// reached within stopTimeout, since pods failing their ADD for want of a kuma-cni that was taken
// out wrongly would be worse than a kuma-cni left behind (the log says how to remove it by hand).
// Without POD_NAME and POD_NAMESPACE, outside such a DaemonSet, kuma-cni always leaves with
// install-cni, as Kuma's does.
func (in *Installer) leaving(ctx context.Context) (bool, string) {
	if in.cfg.PodName == "" || in.cfg.PodNamespace == "" {
		return true, "POD_NAME and POD_NAMESPACE are not set, so no DaemonSet can keep kuma-cni"
	}
	c, err := in.clientset()
	if err != nil {
		return false, in.unknown(err)
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	var last error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		// Each try its own timeout: an API server that never answers must leave time for others.
		actx, acancel := context.WithTimeout(ctx, time.Second)
		leave, why, err := daemonSetGoing(actx, c, in.cfg.PodNamespace, in.cfg.PodName, in.cfg.NodeName)
		acancel()
		if err == nil {
			return leave, why
		}
		last = err
		select {
		case <-ctx.Done():
			return false, in.unknown(last)
		case <-time.After(wait):
		}
	}
}

// unknown says why kuma-cni stays when nobody could say whether the DaemonSet is going.
func (in *Installer) unknown(err error) string {
	return fmt.Sprintf("the API server could not say whether the DaemonSet is being removed (%v); if it was, take kuma-cni out "+
		"of the network configuration in %s, and %s out of %s, by hand", err, in.cfg.NetDir, cni.PluginType, in.cfg.BinDir)
}

// daemonSetGoing looks at the DaemonSet of pod namespace/name; err is a failure to ask, worth
// retrying.
func daemonSetGoing(ctx context.Context, c kubernetes.Interface, namespace, name, node string) (leave bool, why string, err error) {
	refused := func(err error) (bool, string, error) {
		if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			return true, "the API server refuses install-cni's account (" + err.Error() + "): the chart is being removed", nil
		}
		return false, "", err
	}
	pod, err := c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true, "this pod is gone already, so its DaemonSet cannot be told from none", nil
	case err != nil:
		return refused(err)
	}
	owner := metav1.GetControllerOf(pod)
	if owner == nil || owner.Kind != "DaemonSet" {
		return true, "this pod has no DaemonSet", nil
	}
	ds, err := c.AppsV1().DaemonSets(namespace).Get(ctx, owner.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true, "DaemonSet " + owner.Name + " is deleted", nil
	case err != nil:
		return refused(err)
	case ds.UID != owner.UID:
		return true, "DaemonSet " + owner.Name + " was deleted and made anew", nil
	case ds.DeletionTimestamp != nil:
		return true, "DaemonSet " + owner.Name + " is being deleted", nil
	}
	if sel := ds.Spec.Template.Spec.NodeSelector; len(sel) > 0 && node != "" {
		n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, "node " + node + " is deleted", nil
		case err != nil:
			return refused(err)
		case !labels.SelectorFromSet(sel).Matches(labels.Set(n.Labels)):
			return true, "DaemonSet " + owner.Name + " no longer selects node " + node, nil
		}
	}
	return false, "DaemonSet " + owner.Name + " is there and selects this node: its next pod takes over (a rollout, an eviction or a restart)", nil
}

// clientset reaches the API server as kuma-cni does, with this pod's account; the token file is
// read anew as kubelet rotates it.
func (in *Installer) clientset() (kubernetes.Interface, error) {
	if in.client != nil {
		return in.client, nil
	}
	cfg := &rest.Config{Host: in.cfg.apiServer(), BearerTokenFile: in.cfg.TokenFile, UserAgent: "install-cni"}
	if in.cfg.KubernetesServiceProtocol == "https" {
		cfg.TLSClientConfig.CAFile = in.cfg.CAFile
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, errors.New("the API server's settings: " + err.Error())
	}
	in.client = c
	return c, nil
}
