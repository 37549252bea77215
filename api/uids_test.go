package api

import "testing"

func TestParseUIDRange(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    UIDRange
		wantErr string
	}{
		{in: "0", want: UIDRange{0, 0}},
		{in: "1000-2000", want: UIDRange{1000, 2000}},
		{in: "4294967294", want: UIDRange{4294967294, 4294967294}},
		{in: "4294967295", wantErr: `"4294967295" is out of range 0-4294967294; accepted: ` + FormUIDRange},
		{in: "2000-1000", wantErr: `"2000-1000" starts above its end; accepted: ` + FormUIDRange},
		{in: "root", wantErr: `"root" is not a UID or a UID range; accepted: ` + FormUIDRange},
		{in: "", wantErr: `is empty; accepted: ` + FormUIDRange},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseUIDRange(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParsePortsForUIDsList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    PortsForUIDsList
		format  string
		wantErr string
	}{
		{in: "", want: PortsForUIDsList{}, format: ""},
		{in: "106", want: PortsForUIDsList{{UIDs: UIDRange{106, 106}}}, format: "106"},
		{in: "53:106", want: PortsForUIDsList{{Ports: PortRanges{{53, 53}}, UIDs: UIDRange{106, 106}}}, format: "53:106"},
		{in: "tcp:1000", want: PortsForUIDsList{{Protocol: ProtocolTCP, UIDs: UIDRange{1000, 1000}}}, format: "tcp:1000"},
		{in: "*:106", want: PortsForUIDsList{{UIDs: UIDRange{106, 106}}}, format: "106"},
		{in: "*:*:0", want: PortsForUIDsList{{UIDs: UIDRange{0, 0}}}, format: "0"},
		{in: "tcp:22:1000-2000;53:106", format: "tcp:22:1000-2000;53:106", want: PortsForUIDsList{
			{Protocol: ProtocolTCP, Ports: PortRanges{{22, 22}}, UIDs: UIDRange{1000, 2000}},
			{Ports: PortRanges{{53, 53}}, UIDs: UIDRange{106, 106}},
		}},
		{in: " udp : 53,3000-5000 : 106-108 ", format: "udp:53,3000-5000:106-108", want: PortsForUIDsList{
			{Protocol: ProtocolUDP, Ports: PortRanges{{53, 53}, {3000, 5000}}, UIDs: UIDRange{106, 108}},
		}},
		{in: "sctp:22:1", wantErr: `"sctp" in "sctp:22:1" is not a protocol (tcp, udp or *); accepted: ` + FormPortsForUIDs},
		{in: "tcp:22:", wantErr: `"tcp:22:" has no UIDs; accepted: ` + FormPortsForUIDs},
		{in: "tcp:x:1", wantErr: `"x" in "tcp:x:1" is not a port number; accepted: ` + FormPortsForUIDs},
		{in: "tcp:22:kuma", wantErr: `"kuma" in "tcp:22:kuma" is not a UID or a UID range; accepted: ` + FormPortsForUIDs},
		{in: "a:b:c:d", wantErr: `"a:b:c:d" has more than three ':'-separated parts; accepted: ` + FormPortsForUIDs},
		{in: "53:106;;54:107", format: "53:106;54:107", want: PortsForUIDsList{ // Kuma skips empty entries
			{Ports: PortRanges{{53, 53}}, UIDs: UIDRange{106, 106}}, {Ports: PortRanges{{54, 54}}, UIDs: UIDRange{107, 107}}}},
		{in: "tcp:22,:106", format: "tcp:22:106", want: PortsForUIDsList{{Protocol: ProtocolTCP, Ports: PortRanges{{22, 22}}, UIDs: UIDRange{106, 106}}}},
		{in: "TCP:22:1000", format: "tcp:22:1000", want: PortsForUIDsList{{Protocol: ProtocolTCP, Ports: PortRanges{{22, 22}}, UIDs: UIDRange{1000, 1000}}}},
		{in: "tcp,udp:22:1000", format: "22:1000", want: PortsForUIDsList{{Ports: PortRanges{{22, 22}}, UIDs: UIDRange{1000, 1000}}}},
		{in: "udp,UDP:53:1", format: "udp:53:1", want: PortsForUIDsList{{Protocol: ProtocolUDP, Ports: PortRanges{{53, 53}}, UIDs: UIDRange{1, 1}}}},
		{in: "tcp,sctp:22:1", wantErr: `"sctp" in "tcp,sctp:22:1" is not a protocol (tcp, udp or *); accepted: ` + FormPortsForUIDs},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePortsForUIDsList(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
			if err == nil && got.String() != tc.format {
				t.Errorf("String() = %q, want %q", got.String(), tc.format)
			}
		})
	}
}
