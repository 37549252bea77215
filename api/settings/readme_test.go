package settings

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/readme"
)

// TestREADMESettingsTable proves the README's table of the injector's variables is generated from
// the declarations.
func TestREADMESettingsTable(t *testing.T) {
	var b strings.Builder
	b.WriteString("| variable | default | value | per pod | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range All {
		if s.Env == "" {
			continue
		}
		name := "`" + s.Env + "`"
		for _, a := range s.EnvAliases {
			name += "<br>alias `" + a + "`"
		}
		def := "(empty)"
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		perPod := ""
		if s.Annotation != "" {
			perPod = "`" + s.Annotation + "`"
			if s.Merges {
				perPod += ", added to this"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, readme.Cell(def), readme.Cell(s.EnvFormText()), perPod, readme.Cell(s.Description))
	}
	readme.CheckSection(t, "settings", b.String(), *update)
}

// TestREADMESpellingsTable proves the README's table of every setting's spellings is generated
// from the declarations.
func TestREADMESpellingsTable(t *testing.T) {
	code := func(prefix, s string) string {
		if s == "" {
			return ""
		}
		return "`" + prefix + s + "`"
	}
	var b strings.Builder
	b.WriteString("| setting | pod annotation | injector variable | flag | document field | chart value |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, s := range All {
		env := code("", s.Env)
		if s.InstallCNIEnv != "" {
			env = code("", s.InstallCNIEnv) + " (install-cni's)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Name, code("", s.Annotation), env,
			code("--", s.Flag), code("", s.Field), code("", s.Chart))
	}
	readme.CheckSection(t, "spellings", b.String(), *update)
}
