package api

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Accepted forms of the scalar values.
const (
	FormSwitch       = "enabled, disabled, true or false"
	FormBool         = "true or false"
	FormIPFamilyMode = "dualstack, ipv4 or ipv6"
	FormDuration     = "a non-negative duration such as 30s or 1m30s"
	FormEnvVars      = "NAME=value pairs separated by ';', e.g. A=1;B=two"
	FormServices     = "comma-separated kuma.io/service values, e.g. redis_kuma-demo_svc_6379"
	FormMeshName     = "a DNS-1123 label such as default"
)

// Accepted forms of the injector's own settings, which package config parses.
const (
	FormDir            = "an absolute directory path"
	FormImage          = "a container image reference such as docker.io/kumahq/kuma-dp:2.14.3"
	FormKumaDPVersion  = "a kuma-dp version 2.9 to 2.14 or 3.x, such as 2.14.3, or empty for the sidecar image's tag"
	FormCACertFile     = "the absolute path of a PEM file, or empty for none"
	FormSidecarUID     = "a UID 1-2147483647 (not 0: the sidecar must not run as root)"
	FormGID            = "a GID 0-2147483647"
	FormEnvVarsOrKumas = FormEnvVars + ", or Kuma's NAME:value,NAME2:value2"
	FormLabels         = "key:value pairs separated by ',' with * for any value, e.g. openshift.io/build.name:*"
	FormLabelValue     = "a label value such as kuma-cni"
	FormNamespace      = "a namespace name such as kube-system"
	FormURL            = "an http or https URL with a host, such as https://kuma-control-plane.kuma-system:5678"
	FormQuantity       = "a Kubernetes quantity such as 50m, 1 or 64Mi"
	FormSelector       = "a label selector such as kubernetes.io/os=linux, or empty for every node"
	FormObjectName     = "an object name such as kuma-transparent-proxy-config (lowercase letters, digits, '-' and '.')"
)

// ParseObjectName parses the name of a Kubernetes object, such as a ConfigMap's.
func ParseObjectName(s string) (string, error) {
	if !isDNS1123Subdomain(s) {
		return "", invalid(s, "", "is not an object name", FormObjectName)
	}
	return s, nil
}

// ParseNamespace parses a namespace's name: a DNS-1123 label.
func ParseNamespace(s string) (string, error) {
	if !isDNS1123Label(s) {
		return "", invalid(s, "", "is not a namespace name", FormNamespace)
	}
	return s, nil
}

// FormPodName is the accepted form of a pod's name.
const FormPodName = "a pod name such as app-7d4b9c-x2k8q (lowercase letters, digits, '-' and '.')"

// ParsePodName parses a pod's name: a DNS-1123 subdomain.
func ParsePodName(s string) (string, error) {
	if !isDNS1123Subdomain(s) {
		return "", invalid(s, "", "is not a pod name", FormPodName)
	}
	return s, nil
}

// ParseSwitch parses the on/off values Kuma accepts for switches such as
// kuma.io/sidecar-injection: enabled|true is on, disabled|false is off. Kuma's deprecated yes and
// no are read too (Deprecated says so).
func ParseSwitch(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "enabled", "true", "yes":
		return true, nil
	case "disabled", "false", "no":
		return false, nil
	}
	return false, invalid(s, "", "is not a switch value", FormSwitch)
}

// ParseBool parses true or false, and Kuma's deprecated yes and no.
func ParseBool(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "true", "yes":
		return true, nil
	case "false", "no":
		return false, nil
	}
	return false, invalid(s, "", "is not a boolean", FormBool)
}

// ParseStrictBool parses true or false only: the form of the injector's own variables and of
// flags, where Kuma never read yes or no.
func ParseStrictBool(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, invalid(s, "", "is not a boolean", FormBool)
}

// IPFamilyMode selects the IP families whose traffic is redirected.
type IPFamilyMode string

const (
	IPFamilyDualStack IPFamilyMode = "dualstack"
	IPFamilyIPv4      IPFamilyMode = "ipv4"
	IPFamilyIPv6      IPFamilyMode = "ipv6"
)

// IPv4 reports whether IPv4 traffic is redirected in this mode.
func (m IPFamilyMode) IPv4() bool { return m == IPFamilyDualStack || m == IPFamilyIPv4 }

// IPv6 reports whether IPv6 traffic is redirected in this mode.
func (m IPFamilyMode) IPv6() bool { return m == IPFamilyDualStack || m == IPFamilyIPv6 }

// ParseIPFamilyMode parses dualstack, ipv4 or ipv6, in any case as Kuma does; empty is dualstack.
func ParseIPFamilyMode(s string) (IPFamilyMode, error) {
	switch m := IPFamilyMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return IPFamilyDualStack, nil
	case IPFamilyDualStack, IPFamilyIPv4, IPFamilyIPv6:
		return m, nil
	}
	return "", invalid(s, "", "is not an IP family mode", FormIPFamilyMode)
}

// ParseDuration parses a non-negative Go duration such as "30s".
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		return 0, invalid(s, "", "is not a duration", FormDuration)
	case d < 0:
		return 0, invalid(s, "", "is negative", FormDuration)
	}
	return d, nil
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name, Value string
}

// EnvVars is an ordered list of environment variables with distinct names.
type EnvVars []EnvVar

// String formats the list in the syntax ParseEnvVars reads.
func (e EnvVars) String() string {
	parts := make([]string, len(e))
	for i, v := range e {
		parts[i] = v.Name + "=" + v.Value
	}
	return strings.Join(parts, ";")
}

// ParseEnvVars parses "NAME=value;NAME2=value2", the syntax of kuma.io/sidecar-env-vars. Values
// may hold '=' but not ';'. Names follow Kubernetes' rules for environment variable names. A name
// given twice keeps its last value, as in Kuma (Repeated names them).
func ParseEnvVars(s string) (EnvVars, error) {
	vars, err := parseList(s, ";", FormEnvVars, func(entry string) (EnvVar, string, string) {
		name, value, ok := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			return EnvVar{}, "", "has no '='"
		case !isEnvVarName(name):
			return EnvVar{}, name, "is not an environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)"
		}
		return EnvVar{Name: name, Value: value}, "", ""
	})
	if err != nil {
		return nil, err
	}
	out := vars[:0:0]
	for _, v := range vars {
		if i := slices.IndexFunc(out, func(e EnvVar) bool { return e.Name == v.Name }); i >= 0 {
			out[i] = v
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// Repeated lists the names given more than once in a kuma.io/sidecar-env-vars value: only the
// last of each counts.
func Repeated(s string) []string {
	seen := map[string]int{}
	var out []string
	for _, entry := range strings.Split(s, ";") {
		name, _, _ := strings.Cut(entry, "=")
		if name = strings.TrimSpace(name); name != "" {
			if seen[name]++; seen[name] == 2 {
				out = append(out, name)
			}
		}
	}
	return out
}

// Services is a list of kuma.io/service values.
type Services []string

// String formats the list in the syntax ParseServices reads.
func (s Services) String() string { return strings.Join(s, ",") }

// ParseServices parses comma-separated kuma.io/service values, such as those of
// kuma.io/transparent-proxying-reachable-services. Blanks around entries are ignored; an empty value
// is an empty list.
func ParseServices(s string) (Services, error) {
	services, err := parseList(s, ",", FormServices, whole(func(entry string) (string, string) {
		return entry, serviceProblem(entry)
	}))
	return services, err
}

// serviceProblem checks a kuma.io/service value against Kuma's tag value character set.
func serviceProblem(token string) string {
	if token == "" {
		return "is an empty entry"
	}
	for _, c := range token {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-:/", c)) {
			return fmt.Sprintf("has %q, which a kuma.io/service value cannot hold (letters, digits, '.', '_', '-', ':', '/')", c)
		}
	}
	return ""
}

// ParseMeshName parses the value of the kuma.io/mesh label.
func ParseMeshName(s string) (string, error) {
	if !isDNS1123Label(s) {
		return "", invalid(s, "", "is not a mesh name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)", FormMeshName)
	}
	return s, nil
}
