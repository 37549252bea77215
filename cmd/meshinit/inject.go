package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/internal/readfile"
	"github.com/meshinit/meshinit/webhook/inject"
)

// injectCommand injects manifests offline, with the webhook's code and the KUMA_RUNTIME_*
// settings of this environment.
func injectCommand() *cobra.Command {
	var file, namespace, nsLabels string
	var native bool
	cmd := &cobra.Command{
		Use:   "inject -f FILE",
		Short: "Inject the sidecar into the pods of Kubernetes manifests, as the webhook would",
		Long: "Writes the manifests of FILE (- for stdin), YAML or JSON, to stdout with the pods of Pods, Deployments,\n" +
			"StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs injected; other documents are written unchanged.\n" +
			"A namespace has the labels of its Namespace document in the input; one the input holds none of has\n" +
			"--namespace-labels (by default kuma.io/sidecar-injection=enabled, so a pod is injected unless its own\n" +
			"label disables it). Kuma's transparent-proxy ConfigMaps and ContainerPatch objects are read from the\n" +
			"input too, as the injector reads them from the cluster. Cluster defaults come from the\n" +
			"KUMA_RUNTIME_KUBERNETES_* environment, as for the injector. Nothing is written if a document is denied.",
		Example:      "  meshinit inject -f app.yaml | kubectl apply -f -",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, warnings, err := config.Load(os.Environ())
			warn(cmd.ErrOrStderr(), warnings)
			if err == nil {
				err = cfg.ReadCACert()
			}
			if err != nil {
				return err
			}
			labels, err := parseNamespaceLabels(nsLabels)
			if err != nil {
				return err
			}
			if _, err := api.ParseNamespace(namespace); err != nil {
				return err.(*api.FieldError).In("--namespace")
			}
			in, err := readManifests(cmd.Context(), file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			warnings, err = inject.InjectManifests(bytes.NewReader(in), cmd.OutOrStdout(),
				&inject.Injector{Config: cfg, NativeSidecars: native},
				inject.ManifestOptions{Namespace: namespace, NamespaceLabels: labels})
			warn(cmd.ErrOrStderr(), warnings)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the manifests to inject, - for stdin")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the namespace of documents without metadata.namespace")
	cmd.Flags().StringVar(&nsLabels, "namespace-labels", api.LabelSidecarInjection+"=enabled",
		"the labels of namespaces the input holds no Namespace of: key=value pairs separated by ',', or empty for none")
	cmd.Flags().BoolVar(&native, "native-sidecars", true,
		"place kuma-sidecar as a native sidecar init container (Kubernetes 1.29+); false for the classic layout")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// maxManifestBytes bounds the manifests inject reads: far more than any set of objects one applies
// (the API server stores none over 1.5 MiB), far less than would exhaust the machine.
const maxManifestBytes = 32 << 20

// readManifests reads --filename, bounded: a regular file, or stdin until its end or a SIGTERM.
func readManifests(ctx context.Context, file string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = readfile.Context(ctx, stdin, "stdin", maxManifestBytes)
	} else {
		data, err = readfile.Regular(file, maxManifestBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("--filename: %w; accepted: a regular file of YAML or JSON manifests, at most %d MiB, or - for stdin", err, maxManifestBytes>>20)
	}
	return data, nil
}

func warn(w io.Writer, warnings []string) {
	for _, warning := range warnings {
		fmt.Fprintln(w, "warning: "+warning)
	}
}

// parseNamespaceLabels reads --namespace-labels, key=value pairs separated by ','.
func parseNamespaceLabels(s string) (map[string]string, error) {
	const accepted = "key=value pairs separated by ',', such as " + api.LabelSidecarInjection + "=enabled, or empty for none"
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		key, value, ok := strings.Cut(pair, "=")
		problem, token := "", key
		switch {
		case !ok:
			problem, token = "has no '='", pair
		case len(validation.IsQualifiedName(key)) > 0:
			problem = "is not a label key"
		case len(validation.IsValidLabelValue(value)) > 0:
			problem, token = "is not a label value", value
		}
		if problem != "" {
			return nil, (&api.FieldError{Value: s, Token: token, Problem: problem, Accepted: accepted}).In("--namespace-labels")
		}
		out[key] = value
	}
	return out, nil
}
