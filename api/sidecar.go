package api

import (
	"slices"
	"strconv"
	"strings"
)

// Accepted forms of the annotations that shape the sidecar rather than the rules.
const (
	FormEnvoyLogLevel          = "an Envoy log level: trace, debug, info, warning (or warn), error, critical or off"
	FormEnvoyComponentLogLevel = "component:level pairs separated by ',', e.g. upstream:debug,connection:trace, with Envoy's levels trace, debug, info, warning (or warn), error, critical or off"
	FormConcurrency            = "a number of Envoy worker threads 0-4294967295, 0 for no --concurrency (Envoy then uses the CPUs it may run on)"
	FormVolumeName             = "the name of one of the pod's volumes, such as a projected serviceAccountToken volume"
	FormGateway                = "enabled or disabled (true and false are read alike)"
)

// envoyLogLevels are the levels Envoy's --log-level and --component-log-level take.
var envoyLogLevels = []string{"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}

// ParseEnvoyLogLevel parses the level kuma-dp passes to Envoy's --log-level: Envoy refuses to
// start on any other, and the sidecar with it.
func ParseEnvoyLogLevel(s string) (string, error) {
	level := strings.TrimSpace(s)
	if !slices.Contains(envoyLogLevels, level) {
		return "", invalid(s, "", "is not an Envoy log level", FormEnvoyLogLevel)
	}
	return level, nil
}

// ParseEnvoyComponentLogLevel parses Envoy's --component-log-level, "upstream:debug,config:trace",
// and returns it without blanks; empty is none. Component names are Envoy's loggers, which only
// Envoy knows: their spelling is checked, not their existence.
func ParseEnvoyComponentLogLevel(s string) (string, error) {
	pairs, err := parseList(s, ",", FormEnvoyComponentLogLevel, func(entry string) (string, string, string) {
		name, level, ok := strings.Cut(entry, ":")
		name, level = strings.TrimSpace(name), strings.TrimSpace(level)
		switch {
		case !ok:
			return "", entry, "has no ':'"
		case name == "" || strings.IndexFunc(name, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') }) >= 0:
			return "", name, "is not an Envoy component name (lowercase letters, digits and '_')"
		case !slices.Contains(envoyLogLevels, level):
			return "", level, "is not an Envoy log level"
		}
		return name + ":" + level, "", ""
	})
	if err != nil {
		return "", err
	}
	return strings.Join(pairs, ","), nil
}

// ParseConcurrency parses kuma.io/sidecar-proxy-concurrency, Envoy's worker threads, as Kuma does:
// a decimal 32-bit count.
func ParseConcurrency(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, invalid(s, "", "is not a whole number 0-4294967295", FormConcurrency)
	}
	return uint32(n), nil
}

// ParseVolumeName parses the name of a pod's volume, a DNS-1123 label; whether the pod has it is
// the injector's to check.
func ParseVolumeName(s string) (string, error) {
	if !isDNS1123Label(s) {
		return "", invalid(s, "", "is not a volume name (lowercase letters, digits and '-', at most 63)", FormVolumeName)
	}
	return s, nil
}

// ParseGateway parses kuma.io/gateway as a switch. Kuma's pod converter takes only enabled (and
// provided, for gateways it deploys itself, which are never injected), so the injector writes
// enabled for any true value and removes a false one.
func ParseGateway(s string) (bool, error) {
	on, err := ParseSwitch(s)
	if err != nil {
		return false, invalid(s, "", "is not a gateway switch", FormGateway)
	}
	return on, nil
}
