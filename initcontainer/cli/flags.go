// Package cli is the command-line surface of the transparent-proxy engine: kumactl's
// `install transparent-proxy` flags, the --config document, and the install, uninstall and
// validate commands that kuma-init and meshinit share.
package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/initcontainer"
)

// Flags are the transparent-proxy settings as flags, kumactl's spellings, plus --config. Flags and
// the document are two spellings of one configuration: the document (or the defaults) comes
// first, and each flag given replaces its field.
type Flags struct {
	configFile string
	resolvConf string
	// set holds, in the order given, what each flag does to a configuration; fields records which
	// document field each given flag set, to name the flag in validation errors.
	set    []func(*api.TransparentProxyConfig)
	fields map[string]string
}

// setter is a flag's pflag.Value: Set parses with the api parsers, so a bad value fails at once
// with a message naming the flag, the bad token and the accepted form.
type setter struct {
	flags   *Flags
	setting *settings.Setting
	text    string
	isBool  bool
	given   bool
}

func (s *setter) String() string   { return s.text }
func (s *setter) Type() string     { return s.setting.FlagValue }
func (s *setter) IsBoolFlag() bool { return s.isBool }
func (s *setter) Set(v string) error {
	apply, err := s.setting.FlagSetter()(v)
	if err != nil {
		return err
	}
	if s.setting.FlagRepeatable && !s.given {
		// The first occurrence replaces the document's value; later ones add to it.
		s.flags.set = append(s.flags.set, s.setting.ClearField)
	}
	s.text, s.given = v, true
	s.flags.set = append(s.flags.set, apply)
	s.flags.fields[s.setting.Field] = "--" + s.setting.Flag
	return nil
}

// AddFlags defines the flags on fs: --config, --resolv-conf, and the flag of every setting that
// has one, each showing the document's default.
func AddFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{fields: map[string]string{}}
	fs.StringVar(&f.configFile, "config", "", "a "+api.ConfigKind+" document (YAML or JSON) to start from; flags given replace its fields")
	fs.StringVar(&f.resolvConf, "resolv-conf", "", "the resolv.conf whose nameservers' DNS is redirected, instead of "+api.DefaultResolvConf)
	for _, s := range settings.All {
		if s.Flag == "" {
			continue
		}
		isBool := s.FlagValue == "bool"
		v := &setter{flags: f, setting: s, text: s.FlagDefault(), isBool: isBool}
		for _, name := range append([]string{s.Flag}, s.DeprecatedFlags...) {
			fs.Var(v, name, usage(s))
			if isBool {
				fs.Lookup(name).NoOptDefVal = "true"
			}
			if name != s.Flag {
				_ = fs.MarkDeprecated(name, "use --"+s.Flag+", as kumactl says")
			}
		}
	}
	return f
}

// usage is a setting's description as a flag's help, with the form of its values.
func usage(s *settings.Setting) string {
	text := strings.TrimSuffix(s.Description, ".")
	if s.FlagValue != "bool" {
		text += ": " + s.Form
	}
	return strings.ToLower(text[:1]) + text[1:]
}

// Config is the configuration the flags spell: the --config document or the defaults, with each
// given flag applied in order, validated. Errors name the flag where a flag set the field.
func (f *Flags) Config() (*api.TransparentProxyConfig, error) {
	cfg := api.DefaultTransparentProxyConfig()
	if f.configFile != "" {
		data, err := os.ReadFile(f.configFile)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		if cfg, err = api.ParseTransparentProxyConfig(data); err != nil {
			return nil, fmt.Errorf("--config %s:\n%w", f.configFile, err)
		}
	}
	for _, apply := range f.set {
		apply(cfg)
	}
	if f.resolvConf != "" {
		cfg.Redirect.DNS.ResolvConfigPath = f.resolvConf
	}
	if err := cfg.Validate(); err != nil {
		if errs, ok := err.(api.FieldErrors); ok {
			errs.Rename(func(field string) string {
				if flag, ok := f.fields[field]; ok {
					return flag + " (" + field + ")"
				}
				return field
			})
		}
		return nil, err
	}
	return cfg, nil
}

// Host reads what the rules need from the machine: the proxy's UID (an unknown user is an error
// before anything is touched) and the nameservers.
func (f *Flags) Host(cfg *api.TransparentProxyConfig) (initcontainer.Host, error) {
	host, err := initcontainer.ReadHost(cfg)
	if errs, ok := err.(api.FieldErrors); ok {
		errs.Rename(func(field string) string {
			if flag, ok := f.fields[field]; ok {
				return flag
			}
			return field
		})
	}
	return host, err
}
