package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The value types of Kuma's configuration document that meshinit's own lists do not cover: single
// ports (Kuma's Ports), durations, the iptables executables and virtual networks.

// Accepted forms of Kuma's document values.
const (
	FormPorts            = "comma-separated ports 1-65535, e.g. 22,8080 (ranges go in meshinit's excludePortRanges)"
	FormKumaIPFamilyMode = "dualstack or ipv4"
	FormDurationText     = "a duration such as 2s or 500ms"
	FormLogLevel         = "a kernel log level 0-7"
	FormVNetwork         = "interface:CIDR entries, e.g. docker0:172.17.0.0/16 (an interface ending in + is a prefix)"
	FormExecutables      = "name:path pairs separated by ',', names iptables, iptables-save, iptables-restore, ip6tables, ip6tables-save, ip6tables-restore"
	FormFilePath         = "a file path such as /etc/resolv.conf"
)

// Ports are single ports, as Kuma's excludePorts and includePorts hold them.
type Ports []uint16

func (p Ports) String() string {
	parts := make([]string, len(p))
	for i, port := range p {
		parts[i] = strconv.Itoa(int(port))
	}
	return strings.Join(parts, ",")
}

// ParsePorts parses comma-separated single ports; blank entries are skipped, as Kuma does.
func ParsePorts(s string) (Ports, error) {
	ports, err := parseList(s, ",", FormPorts, whole(func(entry string) (uint16, string) {
		if strings.Contains(entry, "-") {
			return 0, "is a range, which Kuma's single ports cannot hold"
		}
		return parsePortToken(entry, 1)
	}))
	return ports, err
}

// MarshalJSON writes numbers, as Kuma does.
func (p Ports) MarshalJSON() ([]byte, error) { return json.Marshal([]uint16(p)) }

// UnmarshalJSON reads a list of numbers and strings, or one string or number, each string a
// comma-separated list: the forms Kuma reads.
func (p *Ports) UnmarshalJSON(data []byte) error { return unmarshalList(data, ",", ParsePorts, p) }

// LogLevel is a kernel log level, 0 (emerg) to 7 (debug).
type LogLevel uint16

func (l LogLevel) String() string { return strconv.Itoa(int(l)) }

// ParseLogLevel parses a kernel log level 0-7.
func ParseLogLevel(s string) (LogLevel, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
	if err != nil || n > 7 {
		return 0, invalid(s, "", "is not a kernel log level", FormLogLevel)
	}
	return LogLevel(n), nil
}

func (l *LogLevel) UnmarshalJSON(data []byte) error {
	var text string
	if json.Unmarshal(data, &text) != nil {
		text = string(data)
	}
	v, err := ParseLogLevel(text)
	if err == nil {
		*l = v
	}
	return err
}

// Duration is a duration written as Go spells it ("2s"); Kuma also reads a number of nanoseconds.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDurationText parses a duration such as "2s", as Kuma's documents and variables spell them.
func ParseDurationText(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return 0, invalid(s, "", "is not a non-negative duration", FormDurationText)
	}
	return Duration(d), nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string as a duration ("2s") and a number as nanoseconds, as Kuma does: a
// string of digits ("2", from a variable, say) has no unit and is refused.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var n json.Number
	if !bytes.HasPrefix(data, []byte(`"`)) && json.Unmarshal(data, &n) == nil {
		ns, err := n.Int64()
		if err != nil || ns < 0 {
			return invalid(string(data), "", "is not a non-negative number of nanoseconds", FormDurationText)
		}
		*d = Duration(ns)
		return nil
	}
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return invalid(string(data), "", "is neither a duration nor a number", FormDurationText)
	}
	v, err := ParseDurationText(text)
	if err == nil {
		*d = v
	}
	return err
}

// Executables names the iptables programs to run, by their role; empty uses the ones found.
type Executables map[string]string

// ExecutableNames are the roles Executables may name, IPv4's then IPv6's.
var ExecutableNames = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

func (e Executables) String() string {
	var parts []string
	for _, name := range ExecutableNames {
		if path, ok := e[name]; ok {
			parts = append(parts, name+":"+path)
		}
	}
	return strings.Join(parts, ",")
}

// ParseExecutables parses "iptables:/usr/sbin/iptables-nft,..." as kumactl's
// --iptables-executables does.
func ParseExecutables(s string) (Executables, error) {
	out := Executables{}
	_, err := parseList(s, ",", FormExecutables, func(entry string) (struct{}, string, string) {
		name, path, ok := strings.Cut(entry, ":")
		name, path = strings.TrimSpace(name), strings.TrimSpace(path)
		switch {
		case !ok || path == "":
			return struct{}{}, entry, "is not name:path"
		case !slices.Contains(ExecutableNames, name):
			return struct{}{}, name, "is not an iptables program's role"
		}
		out[name] = path
		return struct{}{}, "", ""
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validate refuses paths that are not absolute, and a family given only in part, which Kuma
// would silently ignore; errors are named under path.
func (e Executables) validate(path string, errs *FieldErrors) {
	for _, name := range slices.Sorted(maps.Keys(e)) {
		switch exe := e[name]; {
		case !slices.Contains(ExecutableNames, name):
			errs.Add(path+"."+name, invalid(name, "", "is not an iptables program's role", FormExecutables))
		case !strings.HasPrefix(exe, "/"):
			errs.Add(path+"."+name, invalid(exe, "", "is not an absolute path", "the absolute path of the program"))
		}
	}
	for _, family := range [][]string{ExecutableNames[:3], ExecutableNames[3:]} {
		given := 0
		for _, name := range family {
			if _, ok := e[name]; ok {
				given++
			}
		}
		if given != 0 && given != len(family) {
			errs.Add(path, &FieldError{Value: e.String(), Problem: "names some of " + strings.Join(family, ", ") + " but not all",
				Accepted: "all three of a family, or none"})
		}
	}
}

func (e Executables) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]string(e)) }

func (e *Executables) UnmarshalJSON(data []byte) error {
	var m map[string]string
	if err := json.Unmarshal(data, &m); err == nil {
		*e = m
		return nil
	}
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return invalid(string(data), "", "is neither an object nor a string", FormExecutables)
	}
	v, err := ParseExecutables(text)
	if err == nil {
		*e = v
	}
	return err
}

// VNetwork is a virtual network whose traffic is the host's own: an interface, or interfaces by
// prefix, and its addresses.
type VNetwork struct {
	Interface string
	CIDR      netip.Prefix
}

func (n VNetwork) String() string { return n.Interface + ":" + n.CIDR.String() }

// VNetworks is the list of redirect.vnet.networks.
type VNetworks []VNetwork

func (v VNetworks) String() string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = n.String()
	}
	return strings.Join(parts, ",")
}

// ParseVNetwork parses one "interface:CIDR" entry; the interface is split off at the first ':'.
func ParseVNetwork(s string) (VNetwork, error) {
	n, token, problem := parseVNetwork(strings.TrimSpace(s))
	if problem != "" {
		return VNetwork{}, invalid(s, token, problem, FormVNetwork)
	}
	return n, nil
}

// ParseVNetworks parses comma-separated entries.
func ParseVNetworks(s string) (VNetworks, error) {
	nets, err := parseList(s, ",", FormVNetwork, parseVNetwork)
	return nets, err
}

func parseVNetwork(entry string) (VNetwork, string, string) {
	iface, cidr, ok := strings.Cut(entry, ":")
	if !ok || iface == "" {
		return VNetwork{}, entry, "is not interface:CIDR"
	}
	if len(iface) > 15 || strings.ContainsAny(iface, " /") {
		return VNetwork{}, iface, "is not an interface name"
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return VNetwork{}, cidr, "is not a CIDR"
	}
	return VNetwork{Interface: iface, CIDR: p}, "", ""
}

func (v VNetworks) MarshalJSON() ([]byte, error) { return marshalList(v, VNetwork.String) }
func (v *VNetworks) UnmarshalJSON(data []byte) error {
	return unmarshalList(data, ",", ParseVNetworks, v)
}

// Deprecated reports, for a value written in one of Kuma's old spellings that meshinit still
// reads, how it is read and what to write instead; ok is false for a value spelled as it should.
func Deprecated(form, text string) (string, bool) {
	t := strings.TrimSpace(text)
	switch form {
	case FormSwitch, FormBool:
		switch t {
		case "yes":
			return fmt.Sprintf("%q is deprecated, as in Kuma; write true", text), true
		case "no":
			return fmt.Sprintf("%q is deprecated, as in Kuma; write false", text), true
		}
	case FormGateway:
		switch t {
		case "yes":
			return fmt.Sprintf("%q is deprecated, as in Kuma; write enabled", text), true
		case "no":
			return fmt.Sprintf("%q is deprecated, as in Kuma; write disabled", text), true
		}
	case FormIPFamilyMode:
		// The injector writes the annotation back in the form Kuma's pod converter takes.
		if m, err := ParseIPFamilyMode(t); err == nil && string(m) != t {
			if t == "" {
				return fmt.Sprintf("an empty value means %s, and is written as %s (Kuma 2.9 and 2.10's pod converter refuses it); write it", m, m), true
			}
			if m == IPFamilyIPv6 {
				return fmt.Sprintf("%q is read as %s; write %s", text, m, m), true
			}
			return fmt.Sprintf("%q is read, and written, as %s (Kuma's pod converter refuses %q, its kumactl and kuma-dp take it for dualstack); write %s",
				text, m, text, m), true
		}
	}
	return "", false
}
