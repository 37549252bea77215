// Package readme keeps the README's generated sections equal to their single sources in code.
// A section is delimited by <!-- BEGIN name --> and <!-- END name --> lines.
package readme

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/prereq"
)

// CheckSection fails the test when the README's section differs from want; with update it
// rewrites the section instead.
func CheckSection(t *testing.T, name, want string, update bool) {
	t.Helper()
	path := filepath.Join(prereq.RepoRoot(t), "README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->"
	i := strings.Index(text, begin)
	j := strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no section %q (lines %q and %q)", name, strings.TrimSpace(begin), end)
	}
	got := text[i+len(begin) : j]
	if got == want {
		return
	}
	if update {
		text = text[:i+len(begin)] + want + text[j:]
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md section %q is out of date with the code; rerun this test with -update.\n--- README\n%s\n--- code\n%s", name, got, want)
}

// Cell escapes text for a Markdown table cell.
func Cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
