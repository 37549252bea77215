// Package readme keeps the generated sections of the README and of the docs equal to their single
// sources in code. A section is delimited by <!-- BEGIN name --> and <!-- END name --> lines.
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
	CheckFileSection(t, "README.md", name, want, update)
}

// CheckFileSection is CheckSection for the section of another file, file being a path from the
// repository's root, such as docs/reliability.md.
func CheckFileSection(t *testing.T, file, name, want string, update bool) {
	t.Helper()
	path := filepath.Join(prereq.RepoRoot(t), file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->"
	i := strings.Index(text, begin)
	j := strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no section %q (lines %q and %q)", file, name, strings.TrimSpace(begin), end)
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
	t.Errorf("%s section %q is out of date with the code; rerun this test with -update.\n--- %s\n%s\n--- code\n%s", file, name, file, got, want)
}

// Cell escapes text for a Markdown table cell.
func Cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// Code spells literal text in a Markdown table cell: each line a code span, so that nothing in it
// is read as Markdown, with <br> between lines, which a cell cannot hold. Empty text is (empty).
func Code(s string) string {
	if s == "" {
		return "(empty)"
	}
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		lines[i] = codeSpan(line)
	}
	return Cell(strings.Join(lines, "<br>"))
}

// codeSpan wraps text in a code span whose fence is longer than any run of backticks in it, padded
// with a space where the text starts or ends with a backtick or a space, as CommonMark asks.
func codeSpan(s string) string {
	if s == "" {
		return "` `"
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || (strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ")) {
		s = " " + s + " "
	}
	return fence + s + fence
}
