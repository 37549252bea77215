// Package webhook injects the sidecar: one Inject function, typed Pod in, injected Pod (or a
// denial, with warnings) out, shared by the admission webhook and `meshinit inject`. Injection is
// four separate steps, each in its file: decide (whether the pod is injected), resolve (its
// annotations over the cluster's defaults over the built-in ones, into the effective
// configuration), build (the containers, volumes and annotations) and place (where the containers
// go in the pod). The admission handler, its metrics and the injector's server are the edges.
package webhook
