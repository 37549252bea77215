// Package charts holds meshinit's Helm chart, embedded, and renders it with the Helm SDK as
// `helm template` does, for `meshinit install control-plane`, the demo and the tests.
package charts

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

//go:embed all:meshinit
var files embed.FS

// Load returns the embedded meshinit chart.
func Load() (*chart.Chart, error) {
	var buffered []*archive.BufferedFile
	err := fs.WalkDir(files, "meshinit", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		buffered = append(buffered, &archive.BufferedFile{Name: path.Clean(p[len("meshinit/"):]), Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(buffered)
}

// Release says what to render the chart for.
type Release struct {
	Name, Namespace string
	Values          map[string]any
	// KubeVersion is the cluster's version, such as v1.37.0; empty means the version of the
	// Kubernetes libraries this binary was built with.
	KubeVersion string
	// IncludeCRDs renders the chart's CRDs too, as helm template --include-crds does.
	IncludeCRDs bool
}

// Render renders the chart for a release as `helm template` does: values are validated against
// the chart's schema and merged over its defaults, and nothing is sent to a cluster.
func Render(ctx context.Context, r Release) (string, error) {
	ch, err := Load()
	if err != nil {
		return "", err
	}
	if err := ValidateValues(ch, r.Values); err != nil {
		return "", fmt.Errorf("the chart's values are not valid; nothing was rendered:\n%w", err)
	}
	manifest, err := helmRender(ctx, ch, r)
	if m := templateFailure.FindStringSubmatch(fmt.Sprint(err)); m != nil {
		// The chart's own checks (its fail calls) say what is wrong with which values; where in
		// which template they run says nothing to whoever set them.
		return "", fmt.Errorf("the chart's values are not valid; nothing was rendered:\n%s", m[1])
	}
	return manifest, err
}

// templateFailure is how Helm reports a template's fail: the location, then the message.
var templateFailure = regexp.MustCompile(`(?s)^execution error at \([^)]*\): (.*)$`)

// helmRender is Helm's part of Render: a client-side dry-run install.
func helmRender(ctx context.Context, ch *chart.Chart, r Release) (string, error) {
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: common.DefaultCapabilities,
	}
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName, install.Namespace, install.Replace = r.Name, r.Namespace, true
	install.IncludeCRDs = r.IncludeCRDs
	if r.KubeVersion != "" {
		var err error
		if install.KubeVersion, err = common.ParseKubeVersion(r.KubeVersion); err != nil {
			return "", fmt.Errorf("kube version %q: %w", r.KubeVersion, err)
		}
	}
	rel, err := install.RunWithContext(ctx, ch, r.Values)
	if err != nil {
		return "", err
	}
	rendered, ok := rel.(*release.Release)
	if !ok {
		return "", fmt.Errorf("unexpected release type %T", rel)
	}
	return rendered.Manifest, nil
}
