package api

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Accepted forms of UID values.
const (
	FormUIDRange     = "a UID 0-4294967294 or a range such as 1000-2000"
	FormPortsForUIDs = "[tcp|udp|*:][ports|*:]uids entries separated by ';', e.g. tcp:22:1000-2000;53:106"
)

// maxUID is the largest valid UID: (uid_t)-1 means "no change" to the kernel.
const maxUID = 1<<32 - 2

// UIDRange is an inclusive range of user IDs; a single UID has First == Last.
type UIDRange struct {
	First, Last uint32
}

func (r UIDRange) String() string {
	if r.First == r.Last {
		return strconv.FormatUint(uint64(r.First), 10)
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// ParseUIDRange parses a UID or an inclusive UID range such as "1000-2000".
func ParseUIDRange(s string) (UIDRange, error) {
	r, problem := parseUIDRange(strings.TrimSpace(s))
	if problem != "" {
		return UIDRange{}, invalid(s, "", problem, FormUIDRange)
	}
	return r, nil
}

func parseUIDRange(token string) (UIDRange, string) {
	if token == "" {
		return UIDRange{}, "is empty"
	}
	first, last, isRange := strings.Cut(token, "-")
	lo, problem := parseUID(first)
	if problem != "" {
		return UIDRange{}, problem
	}
	if !isRange {
		return UIDRange{First: lo, Last: lo}, ""
	}
	hi, problem := parseUID(last)
	if problem != "" {
		return UIDRange{}, problem
	}
	if lo > hi {
		return UIDRange{}, "starts above its end"
	}
	return UIDRange{First: lo, Last: hi}, ""
}

func parseUID(token string) (uint32, string) {
	if !isDigits(token) {
		return 0, "is not a UID or a UID range"
	}
	n, err := strconv.ParseUint(token, 10, 64)
	if err != nil || n > maxUID {
		return 0, fmt.Sprintf("is out of range 0-%d", uint64(maxUID))
	}
	return uint32(n), ""
}

// Protocol selects the transport protocol of a per-UID exclusion.
type Protocol string

const (
	// ProtocolAll, the zero value, is both TCP and UDP; it is written "*" or left out.
	ProtocolAll Protocol = ""
	ProtocolTCP Protocol = "tcp"
	ProtocolUDP Protocol = "udp"
)

// PortsForUIDs excludes outbound traffic of some UIDs to some ports from redirection.
type PortsForUIDs struct {
	Protocol Protocol
	// Ports is empty for every port.
	Ports PortRanges
	UIDs  UIDRange
}

// String formats the entry in the syntax ParsePortsForUIDs reads, leaving out wildcards.
func (e PortsForUIDs) String() string {
	var parts []string
	if e.Protocol != ProtocolAll {
		parts = append(parts, string(e.Protocol))
	}
	if len(e.Ports) > 0 {
		parts = append(parts, e.Ports.String())
	}
	return strings.Join(append(parts, e.UIDs.String()), ":")
}

// PortsForUIDsList is the value of traffic.kuma.io/exclude-outbound-ports-for-uids.
type PortsForUIDsList []PortsForUIDs

// String formats the list in the syntax ParsePortsForUIDsList reads.
func (l PortsForUIDsList) String() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.String()
	}
	return strings.Join(parts, ";")
}

// ParsePortsForUIDs parses one `[tcp|udp|*:][ports|*:]uids` entry, the syntax of kumactl's
// --exclude-outbound-ports-for-uids: "tcp:22:1000-2000", "53,3000-5000:106-108", "*:*:0", "106".
// With two parts, the first is a protocol when it has letters, and ports otherwise. Protocols may be
// written in any case and as a comma list, as Kuma reads them: TCP:22:1000, tcp,udp:22:1000.
func ParsePortsForUIDs(s string) (PortsForUIDs, error) {
	e, token, problem := parsePortsForUIDs(strings.TrimSpace(s))
	if problem != "" {
		return PortsForUIDs{}, invalid(s, token, problem, FormPortsForUIDs)
	}
	return e, nil
}

// ParsePortsForUIDsList parses ';'-separated entries. Blanks around entries are ignored; an empty
// value is an empty list.
func ParsePortsForUIDsList(s string) (PortsForUIDsList, error) {
	list, err := parseList(s, ";", FormPortsForUIDs, parsePortsForUIDs)
	return list, err
}

// parsePortsForUIDs returns the entry, or the offending token and what is wrong with it.
func parsePortsForUIDs(entry string) (PortsForUIDs, string, string) {
	if entry == "" {
		return PortsForUIDs{}, "", "is empty"
	}
	parts := strings.Split(entry, ":")
	var e PortsForUIDs
	var protocol, ports string
	switch len(parts) {
	case 1:
	case 2: // ports hold no letters, so a word is a protocol, right or wrong
		if strings.ContainsFunc(parts[0], unicode.IsLetter) {
			protocol = parts[0]
		} else {
			ports = parts[0]
		}
	case 3:
		protocol, ports = parts[0], parts[1]
	default:
		return e, entry, "has more than three ':'-separated parts"
	}
	// Kuma reads protocols in any case, and a comma list of them: tcp,udp is both.
	if protocol = strings.TrimSpace(protocol); protocol != "" && protocol != "*" {
		seen := map[Protocol]bool{}
		for _, token := range strings.Split(protocol, ",") {
			switch p := Protocol(strings.ToLower(strings.TrimSpace(token))); p {
			case ProtocolTCP, ProtocolUDP:
				seen[p] = true
			default:
				return e, strings.TrimSpace(token), "is not a protocol (tcp, udp or *)"
			}
		}
		if len(seen) == 1 {
			e.Protocol = map[bool]Protocol{true: ProtocolTCP, false: ProtocolUDP}[seen[ProtocolTCP]]
		}
	}
	if ports = strings.TrimSpace(ports); ports != "" && ports != "*" {
		for _, token := range strings.Split(ports, ",") {
			if strings.TrimSpace(token) == "" {
				continue // as Kuma skips it
			}
			r, problem := parsePortRange(strings.TrimSpace(token))
			if problem != "" {
				return e, strings.TrimSpace(token), problem
			}
			e.Ports = append(e.Ports, r)
		}
	}
	uids := strings.TrimSpace(parts[len(parts)-1])
	if uids == "" {
		return e, entry, "has no UIDs"
	}
	r, problem := parseUIDRange(uids)
	if problem != "" {
		return e, uids, problem
	}
	e.UIDs = r
	return e, "", ""
}
