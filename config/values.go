package config

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
)

func parseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fail(s, "", "is not an http(s) URL with a host", api.FormURL)
	}
	return s, nil
}

func parseQuantity(s string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() < 0 {
		return resource.Quantity{}, fail(s, "", "is not a non-negative quantity", api.FormQuantity)
	}
	return q, nil
}

func fail(value, token, problem, form string) error {
	return &api.FieldError{Value: value, Token: token, Problem: problem, Accepted: form}
}

func parseDir(s string) (string, error) {
	if !filepath.IsAbs(s) {
		return "", fail(s, "", "is not an absolute path", api.FormDir)
	}
	return filepath.Clean(s), nil
}

// parseFile reads an absolute file path, or empty for none.
func parseFile(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if !filepath.IsAbs(s) {
		return "", fail(s, "", "is not an absolute path", api.FormCACertFile)
	}
	return filepath.Clean(s), nil
}

func parseImage(s string) (string, error) {
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return "", fail(s, "", "is not an image reference: "+err.Error(), api.FormImage)
	}
	return s, nil
}

func parseSidecarUID(s string) (int64, error) {
	n, ok := parseID(s)
	if !ok || n == 0 {
		return 0, fail(s, "", "is not a UID the sidecar can run as", api.FormSidecarUID)
	}
	return n, nil
}

func parseGID(s string) (int64, error) {
	n, ok := parseID(s)
	if !ok {
		return 0, fail(s, "", "is not a GID", api.FormGID)
	}
	return n, nil
}

// parseID reads a Kubernetes user or group ID, 0-2147483647.
func parseID(s string) (int64, bool) {
	uid, err := api.ParseUIDRange(s)
	if err != nil || uid.First != uid.Last || len(validation.IsValidUserID(int64(uid.First))) > 0 {
		return 0, false
	}
	return int64(uid.First), true
}

// parseEnvVars reads the annotation's NAME=value;NAME2=value2, or Kuma's NAME:value,NAME2:value2
// for this variable. Whichever of '=' and ':' comes first tells the two apart, since neither may
// appear in a name.
func parseEnvVars(s string) (api.EnvVars, error) {
	text := s
	if i := strings.IndexAny(s, "=:"); i >= 0 && s[i] == ':' {
		entries := strings.Split(s, ",")
		for i, entry := range entries {
			entries[i] = strings.Replace(entry, ":", "=", 1)
		}
		text = strings.Join(entries, ";")
	}
	vars, err := api.ParseEnvVars(text)
	if fe, ok := errors.AsType[*api.FieldError](err); ok {
		return nil, fail(s, fe.Token, fe.Problem, api.FormEnvVarsOrKumas)
	}
	// A pod's annotation keeps the last of a repeated name, as Kuma's does; the cluster's
	// setting, a map in Kuma's configuration, cannot repeat one.
	if repeated := api.Repeated(text); len(repeated) > 0 {
		return nil, fail(s, repeated[0], "is given more than once", api.FormEnvVarsOrKumas)
	}
	return vars, err
}

// parseLabelSelectors reads Kuma's key:value,key2:value2 map, where * matches any value.
func parseLabelSelectors(s string) (map[string]string, error) {
	labels := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return labels, nil
	}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		key, value, ok := strings.Cut(entry, ":")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok:
			return nil, fail(s, entry, "has no ':'", api.FormLabels)
		case len(validation.IsQualifiedName(key)) > 0:
			return nil, fail(s, key, "is not a label key", api.FormLabels)
		case value != "*" && len(validation.IsValidLabelValue(value)) > 0:
			return nil, fail(s, value, "is not a label value or *", api.FormLabels)
		}
		if _, dup := labels[key]; dup {
			return nil, fail(s, key, "is given more than once", api.FormLabels)
		}
		labels[key] = value
	}
	return labels, nil
}

func parseLabelValue(s string) (string, error) {
	if s == "" || len(validation.IsValidLabelValue(s)) > 0 {
		return "", fail(s, "", "is not a label value", api.FormLabelValue)
	}
	return s, nil
}

func parseNamespace(s string) (string, error) {
	if len(validation.IsDNS1123Label(s)) > 0 {
		return "", fail(s, "", "is not a namespace name", api.FormNamespace)
	}
	return s, nil
}

func parseSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fail(s, "", "is not a label selector ("+err.Error()+")", api.FormSelector)
	}
	return sel, nil
}

// parseTaintKey reads a taint's key, which has a label key's syntax.
func parseTaintKey(s string) (string, error) {
	if len(validation.IsQualifiedName(s)) > 0 {
		return "", fail(s, "", "is not a taint key", settings.NodeTaintControllerTaintKey.Form)
	}
	return s, nil
}
