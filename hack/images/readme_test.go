package main

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/readme"
)

var update = flag.Bool("update", false, "rewrite the README's table of images")

// TestREADMEImages keeps the README's table of images equal to the table they are built from.
func TestREADMEImages(t *testing.T) {
	var b strings.Builder
	b.WriteString("| image | for | contents | runs as | entrypoint | platforms |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, img := range images {
		var contents []string
		for _, bin := range img.Binaries {
			contents = append(contents, fmt.Sprintf("`%s` (`%s`)", bin.Path, strings.TrimPrefix(bin.Package, "./")))
		}
		if len(img.Debian) > 0 {
			contents = append(contents, "Debian's "+strings.Join(img.Debian, ", ")+" with its dependencies, pinned")
		}
		use := "the chart"
		if img.Test {
			use = "tests"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %d (%s) | `%s` | %s |\n", img.Name, use, readme.Cell(strings.Join(contents, "; ")),
			img.User.ID, img.User.Name, strings.Join(img.Entrypoint, " "), strings.Join(img.Platforms, ", "))
	}
	readme.CheckSection(t, "images", b.String(), *update)
}
