package api

import (
	"encoding/json"
	"net/netip"
	"strings"
)

// The document writes lists as arrays of strings and reads either an array (of strings, or numbers
// for ports) or one string in the annotation's syntax, so a value can be copied from an annotation
// or a flag unchanged.

func (p PortRanges) MarshalJSON() ([]byte, error) { return marshalList(p, PortRange.String) }
func (p *PortRanges) UnmarshalJSON(data []byte) error {
	return unmarshalList(data, ",", ParsePortRanges, p)
}

func (c CIDRs) MarshalJSON() ([]byte, error) {
	return marshalList(c, func(p netip.Prefix) string { return formatPrefix(unmapped(p)) })
}
func (c *CIDRs) UnmarshalJSON(data []byte) error {
	return unmarshalList(data, ",", ParseCIDRs, c)
}

func (l PortsForUIDsList) MarshalJSON() ([]byte, error) { return marshalList(l, PortsForUIDs.String) }
func (l *PortsForUIDsList) UnmarshalJSON(data []byte) error {
	return unmarshalList(data, ";", ParsePortsForUIDsList, l)
}

func (s Services) MarshalJSON() ([]byte, error) {
	return marshalList(s, func(s string) string { return s })
}
func (s *Services) UnmarshalJSON(data []byte) error {
	return unmarshalList(data, ",", ParseServices, s)
}

func (m *IPFamilyMode) UnmarshalJSON(data []byte) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return invalid(string(data), "", "is not a string", FormIPFamilyMode)
	}
	mode, err := ParseIPFamilyMode(text)
	if err != nil {
		return err
	}
	*m = mode
	return nil
}

func marshalList[S ~[]E, E any](list S, format func(E) string) ([]byte, error) {
	items := make([]string, len(list))
	for i, e := range list {
		items[i] = format(e)
	}
	return json.Marshal(items)
}

func unmarshalList[T any](data []byte, sep string, parse func(string) (T, error), out *T) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return &FieldError{Value: string(data), Problem: "is neither a list nor a string"}
		}
		tokens := make([]string, len(items))
		for i, item := range items {
			if json.Unmarshal(item, &tokens[i]) == nil {
				continue
			}
			var n json.Number
			if err := json.Unmarshal(item, &n); err != nil {
				return &FieldError{Value: string(item), Problem: "is neither a string nor a number"}
			}
			tokens[i] = n.String()
		}
		text = strings.Join(tokens, sep)
	}
	v, err := parse(text)
	if err != nil {
		return err
	}
	*out = v
	return nil
}
