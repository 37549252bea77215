package initcontainer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/api"
)

const foreignDirect = `<?xml version="1.0" encoding="utf-8"?>
<direct>
  <chain ipv="ipv4" table="filter" chain="FOREIGN"/>
  <rule ipv="ipv4" table="filter" chain="INPUT" priority="0">-p tcp --dport 22 -j ACCEPT</rule>
  <passthrough ipv="ipv6">-t raw -A PREROUTING -j ACCEPT</passthrough>
</direct>
`

func TestFirewalldDirect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "firewalld", "direct.xml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(foreignDirect), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := NewPlan(everything(), testHost, api.BackendIPTables)
	if err := StoreFirewalld(path, plan); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	text := string(first)
	for _, want := range []string{
		`<chain ipv="ipv4" table="filter" chain="FOREIGN"></chain>`,
		`<rule ipv="ipv4" table="filter" chain="INPUT" priority="0">-p tcp --dport 22 -j ACCEPT</rule>`,
		`<passthrough ipv="ipv6">-t raw -A PREROUTING -j ACCEPT</passthrough>`,
		`<chain ipv="ipv6" table="nat" chain="KUMA_MESH_OUTBOUND"></chain>`,
		// Appended in the kernel, after others' rules; the DNS jump on top, before them.
		`<rule ipv="ipv4" table="nat" chain="OUTPUT" priority="1000">-p tcp -m comment --comment &#34;meshinit: outbound TCP to KUMA_MESH_OUTBOUND&#34; -j KUMA_MESH_OUTBOUND</rule>`,
		`<rule ipv="ipv4" table="nat" chain="OUTPUT" priority="-999">-p udp -m udp --dport 53 -m comment --comment &#34;meshinit: outbound DNS to KUMA_MESH_OUTBOUND&#34; -j KUMA_MESH_OUTBOUND</rule>`,
		`<rule ipv="ipv6" table="nat" chain="KUMA_MESH_OUTBOUND_REDIRECT" priority="1">-p tcp -m comment --comment &#34;meshinit: outbound TCP to the sidecar&#34; -j REDIRECT --to-ports 15001</rule>`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("direct.xml lacks %s:\n%s", want, text)
		}
	}
	rules := 0
	for _, fp := range plan.Families {
		rules += len(fp.Rules) + len(fp.Chains)
	}
	if err := StoreFirewalld(path, plan); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); string(second) != text {
		t.Errorf("storing twice changed direct.xml:\n%s", second)
	}

	removed, err := RemoveFirewalld(path)
	if err != nil || removed != rules {
		t.Errorf("RemoveFirewalld = %d, %v; want %d removed", removed, err, rules)
	}
	left, _ := os.ReadFile(path)
	if strings.Contains(string(left), "meshinit") || strings.Contains(string(left), "KUMA_MESH") ||
		!strings.Contains(string(left), "FOREIGN") || !strings.Contains(string(left), "passthrough") {
		t.Errorf("after removal:\n%s", left)
	}
}

// TestFirewalldWithoutComments: rules without our marker are still ours, by their chain or jump.
func TestFirewalldWithoutComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "direct.xml")
	if err := os.WriteFile(path, []byte(foreignDirect), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := everything()
	cfg.Comments.Disabled = true
	if err := StoreFirewalld(path, NewPlan(cfg, testHost, api.BackendIPTables)); err != nil {
		t.Fatal(err)
	}
	stored, _ := os.ReadFile(path)
	if strings.Contains(string(stored), "--comment") {
		t.Errorf("comments disabled, but direct.xml holds some:\n%s", stored)
	}
	if _, err := RemoveFirewalld(path); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadFile(path); strings.Contains(string(left), "KUMA_MESH") || strings.Count(string(left), "\n  <") != 3 {
		t.Errorf("after removal:\n%s", left)
	}
}

func TestFirewalldFileOfOursOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "direct.xml")
	if n, err := RemoveFirewalld(path); n != 0 || err != nil {
		t.Errorf("removing from no file: %d, %v", n, err)
	}
	if err := StoreFirewalld(path, NewPlan(everything(), testHost, api.BackendIPTables)); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveFirewalld(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("direct.xml with nothing left was kept: %v", err)
	}
	if err := os.WriteFile(path, []byte("<direct><rule"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := StoreFirewalld(path, NewPlan(everything(), testHost, api.BackendIPTables)); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a malformed direct.xml was overwritten, or the error does not name it: %v", err)
	}
}
