package main

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"maps"
	"path"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
)

// sbomDir is where each image carries its software bill of materials, a CycloneDX JSON document
// named after the image.
const sbomDir = "/usr/share/sbom"

// goBinary is a binary of an image with what it was built from.
type goBinary struct {
	Path string // in the image
	Data []byte
	Info *buildinfo.BuildInfo
}

// sbom lists what an image's platform is made of: each Go binary (with its hash) and the Go
// modules and toolchain it was built from, and each Debian package (with the hash of its .deb).
// Nothing in it depends on when or where it was made.
// The image is ref at tag; its binaries report version.
func sbom(ref, tag, version string, bins []goBinary, debs []Deb, distro string) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.Metadata = &cdx.Metadata{Component: &cdx.Component{Type: cdx.ComponentTypeContainer, Name: ref, Version: tag}}
	components := map[string]cdx.Component{}
	var deps []cdx.Dependency
	for _, b := range bins {
		sum := sha256.Sum256(b.Data)
		main := cdx.Component{
			BOMRef: "file:" + b.Path, Type: cdx.ComponentTypeApplication, Name: b.Info.Path, Version: version,
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex.EncodeToString(sum[:])}},
			Properties: &[]cdx.Property{{Name: "path", Value: b.Path}},
		}
		components[main.BOMRef] = main
		refs := []string{goModule(components, "stdlib", b.Info.GoVersion)}
		for _, m := range b.Info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			refs = append(refs, goModule(components, m.Path, m.Version))
		}
		slices.Sort(refs)
		deps = append(deps, cdx.Dependency{Ref: main.BOMRef, Dependencies: &refs})
	}
	for _, d := range debs {
		purl := packageurl.NewPackageURL(packageurl.TypeDebian, "debian", d.Name, d.Version,
			packageurl.Qualifiers{{Key: "arch", Value: d.Arch}, {Key: "distro", Value: distro}}, "").ToString()
		components[purl] = cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: d.Name, Version: d.Version,
			PackageURL: purl, Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: d.SHA256}}}
	}
	list := slices.SortedFunc(maps.Values(components), func(a, b cdx.Component) int { return cmp.Compare(a.BOMRef, b.BOMRef) })
	bom.Components = &list
	slices.SortFunc(deps, func(a, b cdx.Dependency) int { return cmp.Compare(a.Ref, b.Ref) })
	bom.Dependencies = &deps
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).Encode(bom); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// goModule adds a Go module (or the standard library, as "stdlib") and returns its reference.
func goModule(components map[string]cdx.Component, module, version string) string {
	ns, name := path.Split(module)
	purl := packageurl.NewPackageURL(packageurl.TypeGolang, strings.TrimSuffix(ns, "/"), name, version, nil, "").ToString()
	components[purl] = cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: module, Version: version, PackageURL: purl}
	return purl
}
