package api

import (
	"reflect"
	"testing"
)

func TestParsePortRanges(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    PortRanges
		wantErr string
	}{
		{in: "", want: PortRanges{}},
		{in: "  ", want: PortRanges{}},
		{in: "22", want: PortRanges{{22, 22}}},
		{in: "22,8000-8100", want: PortRanges{{22, 22}, {8000, 8100}}},
		{in: " 22 , 8000-8100 ", want: PortRanges{{22, 22}, {8000, 8100}}},
		{in: "1,65535", want: PortRanges{{1, 1}, {65535, 65535}}},
		{in: "80-80", want: PortRanges{{80, 80}}},
		{in: "022", want: PortRanges{{22, 22}}},
		{in: "22,,80", want: PortRanges{{22, 22}, {80, 80}}}, // Kuma skips empty entries
		{in: "22,", want: PortRanges{{22, 22}}},
		{in: "0", wantErr: `"0" is out of range 1-65535; accepted: ` + FormPortRanges},
		{in: "22,65536", wantErr: `"65536" in "22,65536" is out of range 1-65535; accepted: ` + FormPortRanges},
		{in: "99999999999999999999", wantErr: `"99999999999999999999" is out of range 1-65535; accepted: ` + FormPortRanges},
		{in: "http", wantErr: `"http" is not a port number; accepted: ` + FormPortRanges},
		{in: "8100-8000", wantErr: `"8100-8000" starts above its end; accepted: ` + FormPortRanges},
		{in: "-5", wantErr: `"-5" is not a port or a range; accepted: ` + FormPortRanges},
		{in: "5-", wantErr: `"5-" is not a port or a range; accepted: ` + FormPortRanges},
		{in: "1-2-3", wantErr: `"1-2-3" is not a port number; accepted: ` + FormPortRanges},
		{in: "+22", wantErr: `"+22" is not a port number; accepted: ` + FormPortRanges},
		{in: "22;80", wantErr: `"22;80" is not a port number; accepted: ` + FormPortRanges},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePortRanges(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in      string
		parse   func(string) (uint16, error)
		want    uint16
		wantErr string
	}{
		{in: "15006", parse: ParsePort, want: 15006},
		{in: " 53 ", parse: ParsePort, want: 53},
		{in: "0", parse: ParsePort, wantErr: `"0" is out of range 1-65535; accepted: ` + FormPort},
		{in: "", parse: ParsePort, wantErr: `is empty; accepted: ` + FormPort},
		{in: "22,23", parse: ParsePort, wantErr: `"22,23" is not a port number; accepted: ` + FormPort},
		{in: "0", parse: ParseOptionalPort, want: 0},
		{in: "9001", parse: ParseOptionalPort, want: 9001},
		{in: "65536", parse: ParseOptionalPort, wantErr: `"65536" is out of range 0-65535; accepted: ` + FormOptionalPort},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tc.parse(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestPortRangesString(t *testing.T) {
	p := PortRanges{{22, 22}, {8000, 8100}}
	if got := p.String(); got != "22,8000-8100" {
		t.Errorf("String() = %q", got)
	}
	if !p.Contains(8050) || p.Contains(23) {
		t.Error("Contains disagrees with the ranges")
	}
}

func TestPortRangesWarnings(t *testing.T) {
	p, _ := ParsePortRanges("22,80,22,8000-8100,8100-8200,9000")
	want := []string{"22 overlaps 22", "8100-8200 overlaps 8000-8100"}
	if got := p.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() = %q, want %q", got, want)
	}
}

// checkParse compares a parser's result with the expected value or exact error text.
func checkParse[T any](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil {
			t.Fatalf("got %v, want error %q", got, wantErr)
		}
		if err.Error() != wantErr {
			t.Fatalf("error\n got: %s\nwant: %s", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}
