package api

import (
	"encoding/json"
	"strings"
)

// FormBackend is the accepted form of meshinit.backend.
const FormBackend = "auto, iptables or nftables"

// Backend says how the transparent-proxy rules reach the kernel: through the iptables tools, or
// through nftables over netlink, in a table of meshinit's own, with no tool at all. Kuma has no
// such choice (its rules are iptables rules), so the field is meshinit's: meshinit.backend.
type Backend string

const (
	// BackendAuto keeps iptables where the pod or node already uses it and takes nftables where
	// iptables is missing; initcontainer.ChooseBackend defines it exactly.
	BackendAuto     Backend = "auto"
	BackendIPTables Backend = "iptables"
	BackendNFTables Backend = "nftables"
)

// ParseBackend parses auto, iptables or nftables; empty is auto.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(strings.TrimSpace(s)); b {
	case "":
		return BackendAuto, nil
	case BackendAuto, BackendIPTables, BackendNFTables:
		return b, nil
	}
	return "", invalid(s, "", "is not a transparent-proxy backend", FormBackend)
}

func (b *Backend) UnmarshalJSON(data []byte) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return invalid(string(data), "", "is not a string", FormBackend)
	}
	v, err := ParseBackend(text)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Backend is the configured backend; auto when the document names none.
func (c *TransparentProxyConfig) Backend() Backend {
	if c.Meshinit.Backend == "" {
		return BackendAuto
	}
	return c.Meshinit.Backend
}

// SetBackend sets the backend; auto, the default, is left out of the document, so that documents
// that do not choose stay as they were.
func (c *TransparentProxyConfig) SetBackend(b Backend) {
	if b == BackendAuto {
		b = ""
	}
	c.Meshinit.Backend = b
}

// validateBackend checks the backend and what it cannot do: firewalld's direct.xml holds iptables
// rules, which firewalld applies with iptables, so storing them asks for the iptables backend.
func (c *TransparentProxyConfig) validateBackend(errs *FieldErrors) {
	if _, err := ParseBackend(string(c.Meshinit.Backend)); err != nil {
		errs.Add(c.Path(&c.Meshinit.Backend), err)
		return
	}
	if c.StoreFirewalld && c.Backend() == BackendNFTables {
		errs.Add(c.Path(&c.StoreFirewalld), &FieldError{Value: "true",
			Problem:  "stores iptables rules in firewalld's direct.xml, which " + c.Path(&c.Meshinit.Backend) + ": nftables does not install",
			Accepted: "false, or " + c.Path(&c.Meshinit.Backend) + ": iptables or auto"})
	}
}

// backendWarnings says what the backend makes of the iptables programs given.
func (c *TransparentProxyConfig) backendWarnings() []string {
	if len(c.IPTablesExecutables) > 0 && c.Backend() == BackendNFTables {
		return []string{c.Path(&c.IPTablesExecutables) + ": ignored: " + c.Path(&c.Meshinit.Backend) + " is nftables, which runs no iptables program"}
	}
	return nil
}
