package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/prereq"
)

// TestPush pushes the chart's images to a registry served in this process, as `make push` does,
// and pulls each index and every platform's image back by the tag.
func TestPush(t *testing.T) {
	_, dir := setup(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/meshinit"
	selected, err := selectImages(nil, func(img Image) bool { return !img.Test })
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	if err := push(context.Background(), dir, repo, "v-test", selected, &report); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(report.String(), "\n"); n != 4 {
		t.Errorf("pushed %d images, want the chart's 4:\n%s", n, report.String())
	}
	for _, img := range selected {
		ref, err := name.ParseReference(repo + "/" + img.Name + ":v-test")
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if want := digest(t, filepath.Join(dir, img.Name)); got != want {
			t.Errorf("%s: the registry has %s, the layout %s", ref, got, want)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Manifests {
			im, err := remote.Image(ref.Context().Digest(d.Digest.String()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := im.ConfigFile(); err != nil {
				t.Errorf("%s %s: %v", ref, d.Platform.Architecture, err)
			}
		}
	}
}

// TestChartImages: every image the chart deploys or injects is one of the images built here,
// under the same name; and every image built for the chart is one it names: by default, or
// kuma-init-nft, the image without iptables, where the values choose it for nftables-only nodes.
func TestChartImages(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", map[string]any{"cni": map[string]any{"enabled": true}})
	injector := chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "").Spec.Template.Spec.Containers[0]
	named := []string{injector.Image, chartcases.Find[appsv1.DaemonSet](t, objs, "DaemonSet", "").Spec.Template.Spec.Containers[0].Image}
	named = append(named, initImage(injector))
	_, objs = chartcases.Render(t, "meshinit", "kuma-system", map[string]any{"dataPlane": map[string]any{
		"transparentProxyBackend": "nftables", "initImage": map[string]any{"repository": "kuma-init-nft"}}})
	named = append(named, initImage(chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "").Spec.Template.Spec.Containers[0]))
	d, err := defaults(prereq.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{Registry: d.Registry, Tag: d.Tag}
	var built []string
	for _, img := range images {
		if !img.Test {
			built = append(built, b.ref(img))
		}
	}
	slices.Sort(named)
	slices.Sort(built)
	if !slices.Equal(named, built) {
		t.Errorf("the chart names %v, the images built for it are %v", named, built)
	}
}

// initImage is the image the injector gives kuma-init.
func initImage(injector corev1.Container) string {
	for _, e := range injector.Env {
		if e.Name == "KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_IMAGE" {
			return e.Value
		}
	}
	return ""
}
