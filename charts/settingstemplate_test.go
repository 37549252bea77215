package charts_test

import (
	"encoding/json"
	"strings"

	"github.com/meshinit/meshinit/api/settings"
)

// settingsTemplatePath is the chart's template generated from the settings' declarations.
const settingsTemplatePath = "meshinit/templates/_settings.tpl"

// settingsTemplate is the text of the chart's _settings.tpl: every setting's variable by the
// setting's name, and the settings whose variable a chart value fills. The chart's templates spell
// no variable or value path of their own; a test keeps the file equal to this.
func settingsTemplate() string {
	env, defaults := map[string]string{}, map[string]string{}
	var values, installCNI [][2]string
	for _, s := range settings.All {
		if s.InstallCNIEnv != "" && s.Chart != "" {
			installCNI = append(installCNI, [2]string{s.InstallCNIEnv, s.Chart})
		}
		if s.Env == "" {
			continue
		}
		env[s.Name] = s.Env
		defaults[s.Name] = s.Default
		if s.Chart != "" {
			values = append(values, [2]string{s.Env, s.Chart})
		}
	}
	envJSON, _ := json.MarshalIndent(env, "", "  ")
	defaultsJSON, _ := json.MarshalIndent(defaults, "", "  ")
	pairs := func(values [][2]string) string {
		lines := make([]string, len(values))
		for i, v := range values {
			line, _ := json.Marshal(v)
			lines[i] = "  " + string(line)
		}
		return "[\n" + strings.Join(lines, ",\n") + "\n]"
	}
	valuesJSON := pairs(values)
	var b strings.Builder
	b.WriteString("{{/* Generated from the declarations in api/settings; do not edit:\n")
	b.WriteString("   go test ./charts -run TestSettingsTemplate -update rewrites it. */}}\n\n")
	b.WriteString("{{/* The injector's variable of every setting that has one, by the setting's name. */}}\n")
	b.WriteString("{{- define \"meshinit.settingEnv\" -}}\n")
	b.Write(envJSON)
	b.WriteString("\n{{- end -}}\n\n")
	b.WriteString("{{/* The built-in value of every setting that has a variable, by the setting's name. */}}\n")
	b.WriteString("{{- define \"meshinit.settingDefaults\" -}}\n")
	b.Write(defaultsJSON)
	b.WriteString("\n{{- end -}}\n\n")
	b.WriteString("{{/* [variable, value path] of every setting whose variable a chart value fills. */}}\n")
	b.WriteString("{{- define \"meshinit.settingValues\" -}}\n")
	b.WriteString(valuesJSON)
	b.WriteString("\n{{- end -}}\n\n")
	b.WriteString("{{/* [variable, value path] of every setting of install-cni whose variable a chart value fills. */}}\n")
	b.WriteString("{{- define \"meshinit.installCNISettingValues\" -}}\n")
	b.WriteString(pairs(installCNI))
	b.WriteString("\n{{- end -}}\n")
	return b.String()
}
