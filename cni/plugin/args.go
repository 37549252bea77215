package plugin

import "github.com/meshinit/meshinit/api"

// checkPodArgs refuses a pod's namespace or name from CNI_ARGS that Kubernetes would not give an
// object: the plugin puts them in the path of its request to the API server, where "../" or a
// '?' would ask for something else than the pod. Empty ones are not a Kubernetes pod's, which
// the plugin leaves alone.
func checkPodArgs(namespace, name string) error {
	var errs api.FieldErrors
	if namespace != "" {
		_, err := api.ParseNamespace(namespace)
		errs.Add("K8S_POD_NAMESPACE", err)
	}
	if name != "" {
		_, err := api.ParsePodName(name)
		errs.Add("K8S_POD_NAME", err)
	}
	return errs.Err()
}
