package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/internal/readfile"
)

// controlPlaneCommand renders the embedded chart as `helm install` would install it.
func controlPlaneCommand() *cobra.Command {
	var opts values.Options
	release := charts.Release{}
	var createNamespace, skipCRDs, fromCluster bool
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Print the manifests of meshinit's injector (and kuma-cni) for kubectl apply",
		Long: "Renders the Helm chart embedded in this binary with the same values as `helm install` takes\n" +
			"(-f, --set, --set-string, --set-json, --set-file, --set-literal, in Helm's order of precedence) and\n" +
			"prints its manifests, preceded by the release namespace. The values are checked against the chart's\n" +
			"schema, and the injector's resulting KUMA_RUNTIME_* settings as the injector checks them at start.\n" +
			"It includes Kuma's ContainerPatch CRD unless --skip-crds: where Kuma's control plane runs, skip it.\n" +
			"With tls.mode=generate (the default) it keeps the certificate the injector already serves, read from\n" +
			"the cluster (--kubeconfig), so that applying again never breaks admission; where that certificate\n" +
			"cannot serve on, or the cluster cannot be read, it makes a new one and says so.",
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
			if fromCluster {
				if manifest, err = keepClusterCertificate(cmd.Context(), cmd.ErrOrStderr(), kubeconfig, objs, manifest); err != nil {
					return err
				}
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
	f.BoolVar(&fromCluster, "certificate-from-cluster", true,
		"with tls.mode=generate, keep the injector's certificate from its Secret in the cluster; false: always a new one, without a word")
	f.StringVar(&kubeconfig, "kubeconfig", "", "the kubeconfig of the cluster to read the injector's certificate from (default: $KUBECONFIG, then ~/.kube/config)")
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

// readTimeout bounds the read of the injector's Secret: a cluster that does not answer is one the
// manifests are not kept for.
const readTimeout = 10 * time.Second

// keepClusterCertificate, when the chart generated the injector's certificate, keeps the one of
// the cluster's Secret instead, or has the webhook trust both CAs (charts.KeepCertificate); it
// warns on w when it cannot.
func keepClusterCertificate(ctx context.Context, w io.Writer, kubeconfig string, objs []*unstructured.Unstructured, manifest string) (string, error) {
	generated, err := charts.GeneratedSecret(objs)
	if err != nil || generated == nil {
		return manifest, err
	}
	name := generated.Namespace + "/" + generated.Name
	existing, err := clusterSecret(ctx, kubeconfig, generated.Namespace, generated.Name)
	switch {
	case err != nil:
		warn(w, []string{fmt.Sprintf("the injector's Secret %s could not be read from the cluster (%v): these manifests hold a new CA and certificate; "+
			"applied over an installed injector, admissions fail until kubelet updates its Secret volume. Give --kubeconfig to keep the installed certificate, "+
			"or --certificate-from-cluster=false to make a new one without this warning", name, err)})
		return manifest, nil
	case existing == nil:
		return manifest, nil // a first install
	}
	out, kept, why := charts.KeepCertificate(manifest, generated, existing, time.Now())
	if !kept {
		warn(w, []string{fmt.Sprintf("the certificate of the injector's Secret %s cannot be kept: %s. These manifests hold a new one, and the webhook's caBundle "+
			"trusts the old CA and the new one, so that admissions go on while kubelet updates the injector's Secret volume; apply them again once "+
			"the injector serves the new certificate, to drop the old CA", name, why)})
	}
	return out, nil
}

// clusterSecret gets a Secret from the cluster of kubeconfig; nil if there is none of that name.
func clusterSecret(ctx context.Context, kubeconfig, namespace, name string) (*corev1.Secret, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = readTimeout
	client, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	secret, err := client.Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return secret, err
}
