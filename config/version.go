package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/distribution/reference"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
)

// Version is a kuma-dp release line. kuma-dp's flags, variables and readiness endpoint differ
// between the lines meshinit supports, 2.9 to 2.14 and 3.x, and the injector follows the one the
// sidecar image holds.
type Version struct{ Major, Minor int }

func (v Version) String() string { return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) }

// AtLeast reports whether v is major.minor or a later line.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

func (v Version) supported() bool {
	return v.Major == 2 && v.Minor >= 9 && v.Minor <= 14 || v.Major == 3
}

// parseVersion reads a release's version as Kuma tags its images: 2.14.3, and also v2.14, 3.0.0-rc1.
func parseVersion(s string) (Version, bool) {
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, false
	}
	var n [3]int
	for i, p := range parts { // signs were cut off above, with the pre-release and build
		v, err := strconv.Atoi(p)
		if err != nil {
			return Version{}, false
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1]}, true
}

// parseKumaDPVersion reads the version setting; empty leaves it to the image's tag.
func parseKumaDPVersion(s string) (Version, error) {
	if s == "" {
		return Version{}, nil
	}
	v, ok := parseVersion(strings.TrimSpace(s))
	switch {
	case !ok:
		return Version{}, fail(s, "", "is not a version", api.FormKumaDPVersion)
	case !v.supported():
		return Version{}, fail(s, "", "is kuma-dp "+v.String()+", which meshinit does not support", api.FormKumaDPVersion)
	}
	return v, nil
}

// resolveVersion takes kuma-dp's version from the sidecar image's tag when the setting does not
// say it, and refuses an image of a version meshinit does not support: its sidecar would fail on
// flags it does not know, or never report ready.
func (c *Config) resolveVersion(errs *api.FieldErrors) (warnings []string) {
	sc := &c.Injector.SidecarContainer
	tag := ""
	if ref, err := reference.ParseNormalizedNamed(sc.Image); err == nil {
		if tagged, ok := ref.(reference.Tagged); ok {
			tag = tagged.Tag()
		}
	}
	fromTag, tagged := parseVersion(tag)
	switch {
	case sc.KumaDPVersion != Version{}:
		if tagged && fromTag != sc.KumaDPVersion {
			warnings = append(warnings, fmt.Sprintf("%s is %s, but the sidecar image %s is tagged %s: the injector follows %s",
				settings.KumaDPVersion.Env, sc.KumaDPVersion, sc.Image, tag, sc.KumaDPVersion))
		}
	case !tagged:
		errs.Add(settings.KumaDPVersion.Env, &api.FieldError{
			Problem:  fmt.Sprintf("is empty, and the tag of the sidecar image %q says no kuma-dp version", sc.Image),
			Accepted: "a kuma-dp version 2.9 to 2.14 or 3.x, such as 2.14.3"})
	case !fromTag.supported():
		errs.Add(settings.SidecarImage.Env, fail(sc.Image, tag, "is kuma-dp "+fromTag.String()+", which meshinit does not support",
			"an image of kuma-dp 2.9 to 2.14 or 3.x, or "+settings.KumaDPVersion.Env+" naming the version it holds"))
	default:
		sc.KumaDPVersion = fromTag
	}
	return warnings
}

// kumaInitBefore211 reports whether image is Kuma's own kuma-init (kumahq/kuma-init, or Kong
// Mesh's kong/kuma-init, from any registry or mirror path) tagged with a release before 2.11.
// meshinit's own image, and a tag that is no version, take the current command line.
func kumaInitBefore211(image string) bool {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return false
	}
	path := reference.Path(ref)
	tagged, ok := ref.(reference.Tagged)
	if !ok || !strings.HasSuffix("/"+path, "/kumahq/kuma-init") && !strings.HasSuffix("/"+path, "/kong/kuma-init") {
		return false
	}
	v, ok := parseVersion(tagged.Tag())
	return ok && v.Major == 2 && !v.AtLeast(2, 11)
}

// ReadCACert reads the control plane's CA from CACertFile, when it is set, and checks that it is
// PEM certificates: kuma-dp would refuse anything else, at every pod's start.
func (c *Config) ReadCACert() error {
	path := c.Injector.CACertFile
	if path == "" {
		return nil
	}
	bad := func(problem string) error {
		return &api.FieldError{Field: settings.CACertFile.Env, Value: path, Problem: problem,
			Accepted: "a file holding the PEM of the control plane's CA certificate, such as the ca.crt of Kuma's kuma-tls-cert Secret"}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return bad("cannot be read: " + err.Error())
	}
	rest, found := data, 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return bad(fmt.Sprintf("holds a PEM %s, not a CERTIFICATE", block.Type))
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return bad("holds a certificate that does not parse: " + err.Error())
		}
		found++
	}
	if found == 0 || strings.TrimSpace(string(rest)) != "" {
		return bad("does not hold PEM certificates only")
	}
	c.Injector.CACert = string(data)
	return nil
}
