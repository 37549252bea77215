// Package webhook is the injector's serving edge: the admission handler that runs inject.Inject on
// pod creations, its metrics, the bounds on request bodies, the drain on shutdown, and the manager
// that serves it beside the CNI-mode controllers. Injection itself is in webhook/inject.
package webhook
