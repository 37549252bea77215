// Package kumacontract reads documents and annotations as Kuma's own readers do, so that tests
// can hold what meshinit writes to what kuma-dp, kumactl and Kuma's control plane accept. It is
// written from reading Kuma's code (pkg/transparentproxy/config, app/kuma-dp, the pod converter
// of pkg/plugins/runtime/k8s/controllers, at 2.9–2.14 and 3.0), not copied from it: the types
// and the rules that decide whether a value is accepted, nothing of what Kuma then does with it.
package kumacontract

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Document is Kuma's transparent-proxy configuration as kumactl reads it: every field's JSON name
// and type; fields it does not know are ignored, as Kuma's loader ignores them.
type Document struct {
	KumaDPUser   string       `json:"kumaDPUser"`
	IPFamilyMode IPFamilyMode `json:"ipFamilyMode"`
	Redirect     struct {
		Inbound  Flow `json:"inbound"`
		Outbound Flow `json:"outbound"`
		DNS      struct {
			Enabled                bool   `json:"enabled"`
			Port                   Port   `json:"port"`
			CaptureAll             bool   `json:"captureAll"`
			SkipConntrackZoneSplit bool   `json:"skipConntrackZoneSplit"`
			ResolvConfigPath       string `json:"resolvConfigPath"`
		} `json:"dns"`
		VNet struct {
			Networks []string `json:"networks"`
		} `json:"vnet"`
	} `json:"redirect"`
	DropInvalidPackets bool `json:"dropInvalidPackets"`
	Log                struct {
		Enabled bool   `json:"enabled"`
		Level   uint16 `json:"level"`
	} `json:"log"`
	Comments struct {
		Disabled bool `json:"disabled"`
	} `json:"comments"`
	Wait         uint `json:"wait"`
	WaitInterval uint `json:"waitInterval"`
	Retry        struct {
		MaxRetries          uint     `json:"maxRetries"`
		SleepBetweenRetries Duration `json:"sleepBetweenRetries"`
	} `json:"retry"`
	CNIMode             bool              `json:"cniMode"`
	StoreFirewalld      bool              `json:"storeFirewalld"`
	Verbose             bool              `json:"verbose"`
	DryRun              bool              `json:"dryRun"`
	IPTablesExecutables map[string]string `json:"iptablesExecutables"`
}

// Flow is one direction's redirection.
type Flow struct {
	Enabled                       bool     `json:"enabled"`
	Port                          Port     `json:"port"`
	IncludePorts                  Ports    `json:"includePorts"`
	ExcludePorts                  Ports    `json:"excludePorts"`
	ExcludePortsForUIDs           []string `json:"excludePortsForUIDs"`
	ExcludePortsForIPs            []string `json:"excludePortsForIPs"`
	InsertRedirectInsteadOfAppend bool     `json:"insertRedirectInsteadOfAppend"`
}

// Port is a port as Kuma parses one: the JSON text must be a number 1-65535; a quoted number, 0
// and null are refused.
type Port uint16

func (p *Port) UnmarshalJSON(data []byte) error {
	v, err := parsePort(string(data))
	*p = v
	return err
}

func parsePort(s string) (Port, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("value '%s' is not a valid port (uint16 in the range [1, 65535])", s)
	}
	return Port(n), nil
}

// Ports are single ports: a list of numbers and strings, or one string or number, each string a
// comma-separated list; empty entries are skipped and a range is refused.
type Ports []Port

func (p *Ports) UnmarshalJSON(data []byte) error {
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	var text string
	switch v := raw.(type) {
	case []any:
		var items []string
		for _, item := range v {
			switch i := item.(type) {
			case string, float64:
				items = append(items, fmt.Sprint(i))
			}
		}
		text = strings.Join(items, ",")
	case string, float64:
		text = fmt.Sprint(v)
	default:
		text = string(data)
	}
	*p = nil
	for _, item := range strings.Split(text, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		port, err := parsePort(item)
		if err != nil {
			return err
		}
		*p = append(*p, port)
	}
	return nil
}

// IPFamilyMode is dualstack or ipv4, in any case, kept as written; empty is dualstack.
type IPFamilyMode string

func (m *IPFamilyMode) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	switch strings.ToLower(s) {
	case "", "dualstack", "ipv4":
		*m = IPFamilyMode(s)
		return nil
	}
	return fmt.Errorf("invalid ip family mode %q: must be one of 'dualstack' or 'ipv4'", s)
}

// Duration is a duration string, or a number of nanoseconds.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(data []byte) error {
	var n int64
	if json.Unmarshal(data, &n) == nil {
		*d = Duration(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// ReadDocument reads a document as kumactl does: YAML or JSON through sigs.k8s.io/yaml, leniently,
// then the entries only parsed when rules are built: per-UID exclusions, per-address exclusions
// and virtual networks.
func ReadDocument(text string) (*Document, error) {
	var d Document
	if err := yaml.Unmarshal([]byte(text), &d); err != nil {
		return nil, err
	}
	for _, f := range []Flow{d.Redirect.Inbound, d.Redirect.Outbound} {
		for _, e := range f.ExcludePortsForUIDs {
			if err := checkPortsForUIDs(e); err != nil {
				return nil, fmt.Errorf("excludePortsForUIDs %q: %w", e, err)
			}
		}
		for _, e := range f.ExcludePortsForIPs {
			if err := checkAddresses(e); err != nil {
				return nil, fmt.Errorf("excludePortsForIPs %q: %w", e, err)
			}
		}
	}
	for _, n := range d.Redirect.VNet.Networks {
		iface, cidr, ok := strings.Cut(n, ":")
		if _, _, err := net.ParseCIDR(cidr); !ok || iface == "" || err != nil {
			return nil, fmt.Errorf("vnet network %q is not interface:CIDR", n)
		}
	}
	return &d, nil
}

// checkPortsForUIDs is Kuma's [protocol:][ports:]uids: protocols a comma list of tcp and udp in
// any case, or *; ports single or a-b ranges, or *; UIDs one or a range, each at most 65535.
func checkPortsForUIDs(entry string) error {
	parts := strings.Split(entry, ":")
	var protocols, ports string
	switch len(parts) {
	case 1:
	case 2:
		ports = parts[0]
	case 3:
		protocols, ports = parts[0], parts[1]
	default:
		return fmt.Errorf("too many parts")
	}
	if protocols != "" && protocols != "*" {
		for _, p := range strings.Split(protocols, ",") {
			if p := strings.ToLower(strings.TrimSpace(p)); p != "tcp" && p != "udp" {
				return fmt.Errorf("invalid or unsupported protocol %q", p)
			}
		}
	}
	if ports != "" && ports != "*" {
		for _, p := range strings.Split(ports, ",") {
			if p = strings.TrimSpace(p); p != "" {
				if err := checkValueOrRange(p); err != nil {
					return err
				}
			}
		}
	}
	uids := parts[len(parts)-1]
	if strings.Contains(uids, ",") || uids == "*" {
		return fmt.Errorf("uids %q should either be a single item or a range", uids)
	}
	if uids == "" {
		return nil // Kuma lets it through
	}
	return checkValueOrRange(uids)
}

func checkValueOrRange(s string) error {
	lo, hi, isRange := strings.Cut(s, "-")
	if _, err := strconv.ParseUint(lo, 10, 16); err != nil {
		return fmt.Errorf("%q is not a uint16", lo)
	}
	if isRange {
		if _, err := strconv.ParseUint(hi, 10, 16); err != nil {
			return fmt.Errorf("%q is not a uint16", hi)
		}
	}
	return nil
}

// checkAddresses is an entry of excludePortsForIPs: addresses or CIDRs, comma-separated.
func checkAddresses(entry string) error {
	if entry == "" {
		return fmt.Errorf("the rule cannot be empty")
	}
	for _, a := range strings.Split(entry, ",") {
		a = strings.TrimSpace(a)
		if _, _, err := net.ParseCIDR(a); err != nil && net.ParseIP(a) == nil {
			return fmt.Errorf("%q is neither an address nor a CIDR", a)
		}
	}
	return nil
}

// DataplaneView is what kuma-dp (2.11+) reads of --transparent-proxy-config and reports to the
// control plane: the listener ports it must serve, which must be the rules' redirect ports.
type DataplaneView struct {
	IPFamilyMode    IPFamilyMode
	InboundEnabled  bool
	InboundPort     Port
	OutboundEnabled bool
	OutboundPort    Port
	DNSEnabled      bool
	DNSPort         Port
}

// ReadAsDataplane reads a document as kuma-dp does: leniently, but with Kuma's strict ports and
// IP family mode for the fields it reads, over Kuma's defaults.
func ReadAsDataplane(text string) (*DataplaneView, error) {
	var d struct {
		IPFamilyMode IPFamilyMode `json:"ipFamilyMode"`
		Redirect     struct {
			Inbound, Outbound struct {
				Enabled *bool `json:"enabled"`
				Port    *Port `json:"port"`
			}
			DNS struct {
				Enabled bool  `json:"enabled"`
				Port    *Port `json:"port"`
			} `json:"dns"`
		} `json:"redirect"`
	}
	if err := yaml.Unmarshal([]byte(text), &d); err != nil {
		return nil, err
	}
	or := func(p *Port, def Port) Port {
		if p == nil {
			return def
		}
		return *p
	}
	on := func(b *bool) bool { return b == nil || *b }
	return &DataplaneView{IPFamilyMode: d.IPFamilyMode,
		InboundEnabled: on(d.Redirect.Inbound.Enabled), InboundPort: or(d.Redirect.Inbound.Port, 15006),
		OutboundEnabled: on(d.Redirect.Outbound.Enabled), OutboundPort: or(d.Redirect.Outbound.Port, 15001),
		DNSEnabled: d.Redirect.DNS.Enabled, DNSPort: or(d.Redirect.DNS.Port, 15053)}, nil
}

// ConvertPod checks a pod's annotations as the pod converter of Kuma 2.9–2.14 does before it
// builds the pod's Dataplane: with transparent proxying on, the redirect ports are required and
// the IP family must be dualstack or ipv4 exactly; a gateway is enabled or provided; the admin
// port is a number. It returns why the converter would refuse the pod, or nil.
func ConvertPod(annotations map[string]string) error {
	enabled := func(key string) (bool, error) {
		switch v := annotations[key]; v {
		case "enabled", "true", "yes":
			return true, nil
		case "disabled", "false", "no", "":
			return false, nil
		default:
			return false, fmt.Errorf("annotation %q has wrong value %q", key, v)
		}
	}
	tp, err := enabled("kuma.io/transparent-proxying")
	if err != nil {
		return err
	}
	if tp {
		for _, key := range []string{"kuma.io/transparent-proxying-inbound-port", "kuma.io/transparent-proxying-outbound-port"} {
			v, ok := annotations[key]
			if !ok {
				return fmt.Errorf("transparent proxying %s has to be set in transparent mode", key)
			}
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return fmt.Errorf("failed to parse annotation %q: %w", key, err)
			}
		}
		switch v, ok := annotations["kuma.io/transparent-proxying-ip-family-mode"]; {
		case !ok, v == "dualstack", v == "ipv4":
		default:
			return fmt.Errorf("invalid ip family mode '%s'", v)
		}
	}
	switch v, ok := annotations["kuma.io/gateway"]; {
	case !ok, v == "enabled", v == "provided":
	default:
		return fmt.Errorf("invalid delegated gateway type '%s'", v)
	}
	if v, ok := annotations["kuma.io/envoy-admin-port"]; ok {
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return fmt.Errorf("failed to parse annotation %q: %w", "kuma.io/envoy-admin-port", err)
		}
	}
	return nil
}
