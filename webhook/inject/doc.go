// Package inject is the sidecar injection itself, pure: one Inject function, typed Pod in,
// injected Pod (or a denial, with warnings) out, shared by the admission webhook and
// `meshinit inject`. Injection is four separate steps, each in its file: decide (whether the pod
// is injected; the reasons it is not are data), resolve (its annotations over the cluster's
// defaults over the built-in ones, into the effective configuration), build (the containers,
// volumes and annotations) and place (where the containers go in the pod). It neither serves nor
// talks to an API server: the webhook package does that.
package inject
