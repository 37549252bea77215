package api

import (
	"fmt"
	"strconv"
	"strings"
)

// Accepted forms of port values, quoted in errors and in the README's annotation table.
const (
	FormPort         = "a port number 1-65535"
	FormOptionalPort = "a port number 1-65535, or 0 for off"
	FormPortRanges   = "comma-separated ports and ranges 1-65535, e.g. 22,8000-8100"
)

// PortRange is an inclusive range of ports; a single port has First == Last.
type PortRange struct {
	First, Last uint16
}

func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// Contains reports whether port is in the range.
func (r PortRange) Contains(port uint16) bool { return r.First <= port && port <= r.Last }

// PortRanges is a list of ports and ranges in the order given.
type PortRanges []PortRange

// String formats the list in the syntax ParsePortRanges reads.
func (p PortRanges) String() string {
	parts := make([]string, len(p))
	for i, r := range p {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// Contains reports whether any range holds port.
func (p PortRanges) Contains(port uint16) bool {
	for _, r := range p {
		if r.Contains(port) {
			return true
		}
	}
	return false
}

// Warnings lists entries that repeat or overlap an earlier one: valid, but likely a mistake.
func (p PortRanges) Warnings() []string {
	var out []string
	for i, r := range p {
		for _, earlier := range p[:i] {
			if r.First <= earlier.Last && earlier.First <= r.Last {
				out = append(out, fmt.Sprintf("%s overlaps %s", r, earlier))
				break
			}
		}
	}
	return out
}

// ParsePort parses a port number 1-65535.
func ParsePort(s string) (uint16, error) {
	port, problem := parsePortToken(strings.TrimSpace(s), 1)
	if problem != "" {
		return 0, invalid(s, "", problem, FormPort)
	}
	return port, nil
}

// ParseOptionalPort parses a port number 1-65535, or 0 for a feature that is off.
func ParseOptionalPort(s string) (uint16, error) {
	port, problem := parsePortToken(strings.TrimSpace(s), 0)
	if problem != "" {
		return 0, invalid(s, "", problem, FormOptionalPort)
	}
	return port, nil
}

// ParsePortRanges parses comma-separated ports and inclusive ranges such as "22,8000-8100".
// Blanks around entries are ignored; an empty value is an empty list.
func ParsePortRanges(s string) (PortRanges, error) {
	ranges, err := parseList(s, ",", FormPortRanges, whole(parsePortRange))
	return ranges, err
}

// parsePortRange reads "N" or "N-M" and returns what is wrong with it, if anything.
func parsePortRange(token string) (PortRange, string) {
	if token == "" {
		return PortRange{}, "is an empty entry"
	}
	first, last, isRange := strings.Cut(token, "-")
	if first == "" || (isRange && last == "") {
		return PortRange{}, "is not a port or a range"
	}
	lo, problem := parsePortToken(first, 1)
	if problem != "" {
		return PortRange{}, problem
	}
	if !isRange {
		return PortRange{First: lo, Last: lo}, ""
	}
	hi, problem := parsePortToken(last, 1)
	if problem != "" {
		return PortRange{}, problem
	}
	if lo > hi {
		return PortRange{}, "starts above its end"
	}
	return PortRange{First: lo, Last: hi}, ""
}

// parsePortToken reads a decimal port no lower than min and returns what is wrong with it.
func parsePortToken(token string, min uint64) (uint16, string) {
	if token == "" {
		return 0, "is empty"
	}
	n, err := strconv.ParseUint(token, 10, 64)
	if err != nil {
		if isDigits(token) {
			return 0, fmt.Sprintf("is out of range %d-65535", min)
		}
		return 0, "is not a port number"
	}
	if n < min || n > 65535 {
		return 0, fmt.Sprintf("is out of range %d-65535", min)
	}
	return uint16(n), ""
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
