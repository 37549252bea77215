package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/webhook/inject"
)

// injectCommand injects manifests offline, with the webhook's code and the KUMA_RUNTIME_*
// settings of this environment.
func injectCommand() *cobra.Command {
	var file, namespace string
	var native bool
	cmd := &cobra.Command{
		Use:   "inject -f FILE",
		Short: "Inject the sidecar into the pods of Kubernetes manifests, as the webhook would",
		Long: "Writes the manifests of FILE (- for stdin), YAML or JSON, to stdout with the pods of Pods, Deployments,\n" +
			"StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs injected; other documents are written unchanged.\n" +
			"Every namespace counts as labelled kuma.io/sidecar-injection: enabled, so a pod is injected unless its\n" +
			"own label disables it. Cluster defaults come from the KUMA_RUNTIME_KUBERNETES_* environment, as for the injector.\n" +
			"Nothing is written if a document is denied.",
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
			in := cmd.InOrStdin()
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			warnings, err = inject.InjectManifests(in, cmd.OutOrStdout(),
				&inject.Injector{Config: cfg, NativeSidecars: native},
				inject.ManifestOptions{Namespace: namespace, NamespaceLabels: map[string]string{api.LabelSidecarInjection: "enabled"}})
			warn(cmd.ErrOrStderr(), warnings)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the manifests to inject, - for stdin")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the namespace of documents without metadata.namespace")
	cmd.Flags().BoolVar(&native, "native-sidecars", true,
		"place kuma-sidecar as a native sidecar init container (Kubernetes 1.29+); false for the classic layout")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func warn(w io.Writer, warnings []string) {
	for _, warning := range warnings {
		fmt.Fprintln(w, "warning: "+warning)
	}
}
