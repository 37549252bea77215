package settings

import (
	"errors"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/api"
)

// TestDeclarationsComplete checks what no compiler can: that each declaration says what it is,
// and that no two settings share a spelling.
func TestDeclarationsComplete(t *testing.T) {
	seen := map[string]string{}
	unique := func(s *Setting, kind, name string) {
		if name == "" {
			return
		}
		if other, ok := seen[kind+" "+name]; ok {
			t.Errorf("%s and %s share the %s %s", other, s.Name, kind, name)
		}
		seen[kind+" "+name] = s.Name
	}
	for _, s := range All {
		unique(s, "name", s.Name)
		unique(s, "annotation", s.Annotation)
		unique(s, "flag", s.Flag)
		for _, env := range append([]string{s.Env, s.InstallCNIEnv}, s.EnvAliases...) {
			unique(s, "variable", env)
		}
		switch {
		case s.Name == "" || s.Description == "" || s.Form == "":
			t.Errorf("%q: a setting needs a name, a description and a form", s.Name)
		case s.Annotation == "" && s.Env == "" && s.Flag == "" && s.InstallCNIEnv == "":
			t.Errorf("%s: nothing sets it", s.Name)
		case s.InstallCNIEnv != "" && s.Env != "":
			t.Errorf("%s: both the injector's variable %s and install-cni's %s", s.Name, s.Env, s.InstallCNIEnv)
		case s.Env != "" && !strings.HasPrefix(s.Env, runtime):
			t.Errorf("%s: variable %s is not one of the injector's", s.Name, s.Env)
		case len(s.EnvAliases) > 0 && s.Env == "":
			t.Errorf("%s: aliases of no variable", s.Name)
		case s.Chart != "" && s.Env == "" && s.InstallCNIEnv == "":
			t.Errorf("%s: chart value %s fills no variable", s.Name, s.Chart)
		case s.Flag != "" && (s.FlagValue == "" || s.FlagSetter() == nil):
			t.Errorf("%s: flag --%s needs a value name and a meaning", s.Name, s.Flag)
		case s.Annotation != "" && s.checkAnnotation == nil:
			t.Errorf("%s: annotation %s is not checked", s.Name, s.Annotation)
		case s.FlagRepeatable && s.clearField == nil:
			t.Errorf("%s: a repeatable flag needs a field to replace", s.Name)
		case s.Field != "" && !api.IsPath(s.Field):
			t.Errorf("%s: field %s is not in the document", s.Name, s.Field)
		case s.Field == "" && s.clearField != nil:
			t.Errorf("%s: it sets the document but names no field", s.Name)
		}
	}
}

// TestDeclaredFormsAreTheParsers proves that each setting's declared forms, which the README
// shows, are the ones its parsers name when they refuse a value.
func TestDeclaredFormsAreTheParsers(t *testing.T) {
	for _, s := range All {
		check := func(parse func(string) error, want string) {
			if parse == nil {
				return // the injector's own setting: package config parses it, and its tests check it
			}
			err := parse("\x01")
			if err == nil {
				return // a free-form value, such as a user name checked by the document
			}
			if fe, ok := errors.AsType[*api.FieldError](err); !ok || fe.Accepted != want {
				t.Errorf("%s: refusal %v; want one that accepts %q", s.Name, err, want)
			}
		}
		check(s.check, s.Form)
		check(s.checkAnnotation, s.AnnotationFormText())
	}
}

func TestFieldPaths(t *testing.T) {
	for s, want := range map[*Setting]string{
		KumaDPUser.Setting:                  "kumaDPUser",
		ExcludeInboundPorts.Setting:         "redirect.inbound.excludePorts",
		SkipDNSConntrackZoneSplit.Setting:   "redirect.dns.skipConntrackZoneSplit",
		ExcludeInboundIPs.Setting:           "redirect.inbound.excludePortsForIPs",
		IPTablesLogs.Setting:                "log.enabled",
		ReachableServices.Setting:           "meshinit.reachableServices",
		ExcludeOutboundPortsForUIDs.Setting: "redirect.outbound.excludePortsForUIDs",
		SidecarDrainTime.Setting:            "",
	} {
		if s.Field != want {
			t.Errorf("%s: field %q, want %q", s.Name, s.Field, want)
		}
		if got, ok := ByField(want); want != "" && (!ok || got != s) {
			t.Errorf("ByField(%q) = %v, %v", want, got, ok)
		}
	}
}
