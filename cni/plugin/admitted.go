package plugin

import (
	"log/slog"
	"slices"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/admitted"
)

// container is what the plugin reads of a pod's container: its name and literal environment.
type container struct {
	Name string `json:"name"`
	Env  []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
}

// injectedContainers are those the injector adds, which carry the digest of the document it
// admitted.
var injectedContainers = []string{api.ContainerSidecar, api.ContainerInit, api.ContainerValidation}

// checkAdmitted refuses a pod whose configuration document is not the one the injector admitted,
// by the digest the injector wrote into its containers' environment, which, unlike the annotation,
// cannot change once the pod exists. A pod without one (injected before the injector wrote
// digests, or by Kuma's injector) is set up as its annotation says, and the log says so: the
// chart's admission policy keeps its annotation as admitted, and refusing would leave such pods
// without a network when they are set up again, after a node's restart say.
func checkAdmitted(log *slog.Logger, pod *Pod) error {
	doc := []byte(pod.Metadata.Annotations[api.AnnotationTransparentProxyConfig])
	found := false
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if !slices.Contains(injectedContainers, c.Name) {
			continue
		}
		for _, e := range c.Env {
			if e.Name != admitted.Env {
				continue
			}
			found = true
			if err := admitted.Check(doc, e.Value); err != nil {
				return err
			}
		}
	}
	if !found {
		log.Info("the pod's configuration is used unchecked: its containers carry no digest of the admitted configuration ("+admitted.Env+
			"), as pods injected by Kuma's injector, or by meshinit before it wrote digests, do", "annotation", api.AnnotationTransparentProxyConfig)
	}
	return nil
}
