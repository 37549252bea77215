package cli

import "github.com/meshinit/meshinit/api/admitted"

// checkAdmitted refuses a document that is not the one the injector admitted, when the
// environment says which that is: the injector writes its digest into kuma-init's and the
// validation container's environment, which cannot change once the pod exists, while the
// document, projected from the pod's annotation, can. Run by hand or on a host there is none, and
// nothing to check.
func checkAdmitted(env Env, doc []byte) error {
	return admitted.Check(doc, admitted.FromEnviron(env.Environ))
}
