// Package cli is the command-line surface of the transparent-proxy engine: kumactl's
// `install transparent-proxy` flags, the --config documents and the KUMA_TRANSPARENT_PROXY_*
// environment, and the install, uninstall and validate commands that kuma-init and meshinit share.
package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/initcontainer"
	"github.com/meshinit/meshinit/internal/readfile"
)

// Flags are the transparent-proxy settings as flags, kumactl's spellings, plus the configuration
// documents. The configuration is built as kumactl builds it: the defaults, then each document in
// the order given, then the KUMA_TRANSPARENT_PROXY_* environment, then each flag given, in order.
type Flags struct {
	// configs are the documents given, in order.
	configs []source
	// set holds, in the order given, what each flag does to a configuration; fields records which
	// document field each given flag set, to name the flag in validation errors.
	set    []func(*api.TransparentProxyConfig)
	fields map[string]string
	// setBy names, once Config has run, the variable or flag that set each field it set, for the
	// errors of Host.
	setBy map[string]string
}

// source is a document given by a flag: a path, or - for stdin.
type source struct{ flag, path string }

// setter is a flag's pflag.Value: Set parses with the api parsers, so a bad value fails at once
// with a message naming the flag, the bad token and the accepted form. Its String is the value
// given, empty before: the flag's default is spelled for the help alone (describeFlags).
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

// AddFlags defines on fs the flags of `kumactl install transparent-proxy`: --config and its older
// spelling --config-file, and the flag of every setting that has one.
func AddFlags(fs *pflag.FlagSet) *Flags {
	f := addFlags(fs)
	f.addConfigFlag(fs, "config", "config-file")
	return f
}

// addFlags defines on fs the flag of every setting that has one and that keep selects (none: all).
// Their help, what they do and their default, is left to describeFlags.
func addFlags(fs *pflag.FlagSet, keep ...*settings.Setting) *Flags {
	f := &Flags{fields: map[string]string{}}
	for _, s := range settings.All {
		if s.Flag == "" || keep != nil && !slices.Contains(keep, s) {
			continue
		}
		isBool := s.FlagValue == "bool"
		v := &setter{flags: f, setting: s, isBool: isBool}
		for _, name := range append([]string{s.Flag}, s.DeprecatedFlags...) {
			fs.Var(v, name, "")
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

// configs is a repeatable flag that adds a document to read.
type configs struct {
	flags *Flags
	name  string
}

func (c configs) String() string { return "" }
func (c configs) Type() string   { return "path" }
func (c configs) Set(v string) error {
	c.flags.configs = append(c.flags.configs, source{c.name, v})
	return nil
}

// addConfigFlag defines a repeatable flag naming a document to read, with its deprecated
// spellings.
func (f *Flags) addConfigFlag(fs *pflag.FlagSet, name string, deprecated ...string) {
	for _, n := range append([]string{name}, deprecated...) {
		fs.Var(configs{f, n}, n, "a "+api.ConfigKind+" document (YAML or JSON), or - for stdin; repeatable, each read over the "+
			"ones before; the KUMA_TRANSPARENT_PROXY_* environment, then the flags given, replace its fields")
		if n != name {
			_ = fs.MarkDeprecated(n, "use --"+name+", as kumactl 2.11 and later say")
		}
	}
}

// DescribeFlags spells the help of the command's setting flags, what each does and its default
// (the document's), for a help about to be printed: a run that prints none never reads them, and
// spelling them for every flag was a twentieth of kuma-init's whole install.
func (c *Command) DescribeFlags() {
	c.Flags.VisitAll(func(fl *pflag.Flag) {
		if s, ok := fl.Value.(*setter); ok {
			fl.Usage, fl.DefValue = usage(s.setting), s.setting.FlagDefault()
		}
	})
}

// usage is a setting's description as a flag's help, with the form of its values.
func usage(s *settings.Setting) string {
	text := strings.TrimSuffix(s.Description, ".")
	if s.FlagValue != "bool" {
		text += ": " + s.Form
	}
	if len(text) > 1 && unicode.IsUpper(rune(text[1])) {
		return text // an acronym, such as IP
	}
	return strings.ToLower(text[:1]) + text[1:]
}

// Config is the configuration the documents, the environment and the flags spell, validated.
// Errors name the flag or variable that set the field; warnings about what the documents and the
// environment hold, and about the configuration, go to env.Stderr.
func (f *Flags) Config(ctx context.Context, env Env) (*api.TransparentProxyConfig, error) {
	cfg := api.DefaultTransparentProxyConfig()
	for _, src := range f.configs {
		data, err := src.read(ctx, env.Stdin)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", src.flag, err)
		}
		if err := checkAdmitted(env, data); err != nil {
			return nil, fmt.Errorf("--%s %s: %w", src.flag, src.path, err)
		}
		doc, err := api.ReadTransparentProxyConfig(data, cfg)
		if err != nil {
			return nil, fmt.Errorf("--%s %s:\n%w", src.flag, src.path, err)
		}
		for _, w := range doc.Warnings {
			env.warn("--%s %s: %s", src.flag, src.path, w)
		}
		cfg = doc.Config
	}
	given, unknown, err := cfg.ApplyEnv(env.Environ)
	if err != nil {
		return nil, err
	}
	for _, name := range unknown {
		env.warn("%s is not a variable Kuma or meshinit reads; it is ignored", name)
	}
	// Errors name the variable, or the flag given after it, that set the field.
	f.setBy = map[string]string{}
	if len(given) > 0 {
		for name, path := range api.EnvNames() {
			if slices.Contains(given, path) {
				f.setBy[path] = name
			}
		}
	}
	maps.Copy(f.setBy, f.fields)
	for _, apply := range f.set {
		apply(cfg)
	}
	if err := cfg.Validate(); err != nil {
		renamed(err, func(field string) string {
			if name, ok := f.setBy[field]; ok {
				return name + " (" + field + ")"
			}
			return field
		})
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		env.warn("%s", w)
	}
	return cfg, nil
}

// Host reads what the rules need from the machine: the proxy's UID (an unknown user is an error
// before anything is touched) and the nameservers. Call it after Config.
func (f *Flags) Host(cfg *api.TransparentProxyConfig) (initcontainer.Host, error) {
	host, err := initcontainer.ReadHost(cfg)
	renamed(err, func(field string) string {
		if name, ok := f.setBy[field]; ok {
			return name
		}
		return field
	})
	return host, err
}

// renamed renames the fields of err's field errors.
func renamed(err error, spell func(string) string) {
	if errs, ok := err.(api.FieldErrors); ok {
		errs.Rename(spell)
	}
}

// read reads the document, bounded: a regular file, or stdin until its end or until ctx ends (a
// SIGTERM, say).
func (s source) read(ctx context.Context, stdin io.Reader) ([]byte, error) {
	if s.path != "-" {
		return readfile.Regular(s.path, api.MaxDocumentSize)
	}
	return readfile.Context(ctx, stdin, "stdin", api.MaxDocumentSize)
}
