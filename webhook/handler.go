package webhook

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshinit/meshinit/webhook/inject"
)

// Handler admits pod creations, injecting the pods Inject selects.
type Handler struct {
	Injector *inject.Injector
	// Namespaces reads the pods' namespaces, for their labels; the manager's cache.
	Namespaces client.Reader
	Decoder    admission.Decoder
	Log        logr.Logger
}

var _ admission.Handler = (*Handler)(nil)

func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		return admission.Allowed("only pod creations are injected")
	}
	pod := &corev1.Pod{}
	if err := h.Decoder.Decode(req, pod); err != nil {
		injections.WithLabelValues(ResultError, "undecodable").Inc()
		return admission.Errored(http.StatusBadRequest, err)
	}
	log := h.Log.WithValues("namespace", req.Namespace, "pod", podName(pod), "dryRun", req.DryRun != nil && *req.DryRun)
	ns := &corev1.Namespace{}
	if err := h.Namespaces.Get(ctx, client.ObjectKey{Name: req.Namespace}, ns); err != nil {
		injections.WithLabelValues(ResultError, "namespace-unreadable").Inc()
		log.Error(err, "reading the namespace")
		return admission.Errored(http.StatusInternalServerError, err)
	}
	res, err := h.Injector.Inject(pod, req.Namespace, ns.Labels)
	var denial *inject.Denial
	switch {
	case errors.As(err, &denial):
		injections.WithLabelValues(ResultDenied, denial.Reason).Inc()
		log.Info("denied", "reason", denial.Reason, "message", denial.Message)
		return admission.Denied(denial.Message)
	case err != nil:
		injections.WithLabelValues(ResultError, "injection").Inc()
		log.Error(err, "injecting")
		return admission.Errored(http.StatusInternalServerError, err)
	case !res.Injected:
		injections.WithLabelValues(ResultSkipped, res.Reason).Inc()
		log.V(1).Info("not injected", "reason", res.Reason, "escapes", res.Escapes)
		return admission.Allowed(res.Reason).WithWarnings(res.Warnings...)
	}
	injections.WithLabelValues(ResultInjected, res.Reason).Inc()
	log.Info("injected", "reason", res.Reason, "settings", res.Settings, "warnings", res.Warnings, "escapes", res.Escapes)
	return patchResponse(res.Pod).WithWarnings(res.Warnings...)
}

// podName names a pod in logs; on creation it may have only a generateName.
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "*"
}
