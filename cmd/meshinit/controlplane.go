package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/internal/readfile"
)

// controlPlaneCommand renders the embedded chart as `helm install` would install it.
func controlPlaneCommand() *cobra.Command {
	var opts values.Options
	release := charts.Release{}
	var createNamespace, skipCRDs bool
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Print the manifests of meshinit's injector (and kuma-cni) for kubectl apply",
		Long: "Renders the Helm chart embedded in this binary with the same values as `helm install` takes\n" +
			"(-f, --set, --set-string, --set-json, --set-file, --set-literal, in Helm's order of precedence) and\n" +
			"prints its manifests, preceded by the release namespace. The values are checked against the chart's\n" +
			"schema, and the injector's resulting KUMA_RUNTIME_* settings as the injector checks them at start.\n" +
			"It includes Kuma's ContainerPatch CRD unless --skip-crds: where Kuma's control plane runs, skip it.\n" +
			"With tls.mode=generate (the default) each run makes a new certificate; use tls.mode=secret or\n" +
			"certManager, or Helm, to apply again without a new one.",
		Example: "  meshinit install control-plane \\\n" +
			"    --set cni.enabled=true --set cni.chained=true \\\n" +
			"    --set cni.netDir=/etc/cni/net.d --set cni.binDir=/opt/cni/bin \\\n" +
			"    --set cni.confName=10-calico.conflist | kubectl apply -f -",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if errs := validation.IsDNS1123Label(release.Namespace); len(errs) > 0 {
				return fmt.Errorf("--namespace %q is not a namespace name: %s", release.Namespace, strings.Join(errs, "; "))
			}
			vals, err := boundedValues(cmd.Context(), opts, cmd.InOrStdin())
			if err != nil {
				return err
			}
			release.Values = vals
			release.IncludeCRDs = !skipCRDs
			manifest, err := charts.Render(cmd.Context(), release)
			if err != nil {
				return err
			}
			objs, err := charts.Objects(manifest)
			if err != nil {
				return err
			}
			warnings, err := charts.CheckSettings(objs)
			warn(cmd.ErrOrStderr(), warnings)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if createNamespace {
				fmt.Fprintf(out, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", release.Namespace)
			}
			_, err = fmt.Fprint(out, manifest)
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.ValueFiles, "values", "f", nil, "a values file (YAML); repeatable, later files win")
	f.StringArrayVar(&opts.Values, "set", nil, "set a value: key=value (several comma-separated, as Helm)")
	f.StringArrayVar(&opts.StringValues, "set-string", nil, "set a value as a string: key=value")
	f.StringArrayVar(&opts.JSONValues, "set-json", nil, "set a JSON value: key=json")
	f.StringArrayVar(&opts.FileValues, "set-file", nil, "set a value to a file's contents: key=path")
	f.StringArrayVar(&opts.LiteralValues, "set-literal", nil, "set a value to a literal string, commas and all: key=value")
	f.StringVarP(&release.Namespace, "namespace", "n", "kuma-system", "the namespace of the injector")
	f.StringVar(&release.Name, "release-name", "meshinit", "the Helm release name, which prefixes the objects' names")
	f.StringVar(&release.KubeVersion, "kube-version", "", "the cluster's Kubernetes version, such as v1.31.0 (default: this binary's libraries')")
	f.BoolVar(&createNamespace, "create-namespace", true, "print the namespace too")
	f.BoolVar(&skipCRDs, "skip-crds", false,
		"leave out the ContainerPatch CRD, which Kuma's control plane installs (helm install adds it only where it is missing)")
	return cmd
}

// maxValuesFileBytes bounds each file of values Helm reads: -f, --set-file.
const maxValuesFileBytes = 8 << 20

// boundedValues merges the values as Helm does, but Helm reads a file whole, whatever it is, and
// stdin until its end, ignoring SIGTERM: here each file is read as a regular file of at most
// maxValuesFileBytes, and stdin ("-" or /dev/stdin) bounded, until its end or a SIGTERM.
func boundedValues(ctx context.Context, opts values.Options, stdin io.Reader) (map[string]any, error) {
	for i, f := range opts.ValueFiles {
		if strings.TrimSpace(f) == "-" {
			opts.ValueFiles[i] = "/dev/stdin" // Helm reads "-" itself
		}
	}
	return opts.MergeValues(getter.Providers{{Schemes: []string{""}, New: func(...getter.Option) (getter.Getter, error) {
		return boundedFiles{ctx, stdin}, nil
	}}})
}

// boundedFiles is the getter of Helm's paths without a scheme, which are files.
type boundedFiles struct {
	ctx   context.Context
	stdin io.Reader
}

func (b boundedFiles) Get(path string, _ ...getter.Option) (*bytes.Buffer, error) {
	var data []byte
	var err error
	if path == "/dev/stdin" {
		data, err = readfile.Context(b.ctx, b.stdin, "stdin", maxValuesFileBytes)
	} else {
		data, err = readfile.Regular(path, maxValuesFileBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%w; accepted: a regular file of values, at most %d MiB, or - for stdin", err, maxValuesFileBytes>>20)
	}
	return bytes.NewBuffer(data), nil
}
