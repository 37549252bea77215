package api

import (
	"bytes"
	"reflect"
	"testing"
)

// The fuzz targets check that no input makes a parser panic, and that whatever a parser accepts
// formats back to text it parses to the same value. Seed corpora live in testdata/fuzz/<target>/;
// run one with: go test ./api -run '^$' -fuzz FuzzPortRanges -fuzztime 30s

func FuzzPortRanges(f *testing.F) { fuzzRoundTrip(f, ParsePortRanges, PortRanges.String) }
func FuzzCIDRs(f *testing.F)      { fuzzRoundTrip(f, ParseCIDRs, CIDRs.String) }
func FuzzPortsForUIDsList(f *testing.F) {
	fuzzRoundTrip(f, ParsePortsForUIDsList, PortsForUIDsList.String)
}
func FuzzEnvVars(f *testing.F)  { fuzzRoundTrip(f, ParseEnvVars, EnvVars.String) }
func FuzzServices(f *testing.F) { fuzzRoundTrip(f, ParseServices, Services.String) }

func fuzzRoundTrip[T any](f *testing.F, parse func(string) (T, error), format func(T) string) {
	f.Fuzz(func(t *testing.T, in string) {
		v, err := parse(in)
		if err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error of type %T, want *FieldError: %v", err, err)
			}
			return
		}
		text := format(v)
		back, err := parse(text)
		if err != nil {
			t.Fatalf("%q parsed, but its formatted form %q does not: %v", in, text, err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("%q -> %q -> %#v, want %#v", in, text, back, v)
		}
	})
}

// FuzzTransparentProxyConfig feeds arbitrary documents to the parser; an accepted document must
// marshal and parse back to the same configuration: the same document again. (An empty list, as
// given, and no list, as read back, mean the same and are written the same.)
func FuzzTransparentProxyConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		cfg, err := ParseTransparentProxyConfig(doc)
		if err != nil {
			return
		}
		out, err := cfg.Marshal()
		if err != nil {
			t.Fatalf("accepted document does not marshal: %v\n%s", err, doc)
		}
		back, err := ParseTransparentProxyConfig(out)
		if err != nil {
			t.Fatalf("marshalled document does not parse: %v\n%s", err, out)
		}
		if again, err := back.Marshal(); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("round trip changed the config (%v):\n%s\n->\n%s\n->\n%s", err, doc, out, again)
		}
	})
}
