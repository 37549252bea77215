package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
)

// prefix marks the variables this package owns; others in the environment are not its business.
const prefix = "KUMA_RUNTIME_KUBERNETES_"

// Load reads the configuration from environ ("NAME=value" entries, as os.Environ returns them).
// Every bad value is reported at once, each naming the variable that was set. The warnings name
// variables that look like ours but are not known: most likely typos, which would otherwise be
// silently ignored.
func Load(environ []string) (*Config, []string, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			env[name] = value
		}
	}
	c := &Config{given: map[*settings.Setting]bool{}}
	var errs api.FieldErrors
	known := map[string]bool{}
	for _, s := range bindings {
		name, value, given := s.Env, s.Default, false
		for _, n := range append([]string{s.Env}, s.EnvAliases...) {
			known[n] = true
			v, ok := env[n]
			switch {
			case !ok:
			case !given:
				name, value, given = n, v, true
			case v != value:
				errs.Add(n, &api.FieldError{Value: v, Problem: fmt.Sprintf("disagrees with %s=%q", name, value),
					Accepted: "one of the two spellings, or the same value in both"})
			}
		}
		errs.Add(name, s.set(c, value))
		if given {
			c.given[s.Setting] = true
		}
	}
	var warnings []string
	c.Injector.InitContainer.KumactlBefore211 = kumaInitBefore211(c.Injector.InitContainer.Image)
	if len(errs) == 0 {
		warnings = c.resolveVersion(&errs)
		c.validate(&errs)
	}
	for name := range env {
		if strings.HasPrefix(name, prefix) && !known[name] {
			warnings = append(warnings, name+" is not a setting meshinit knows; it is ignored")
		}
	}
	slices.Sort(warnings)
	if err := errs.Err(); err != nil {
		return nil, warnings, err
	}
	return c, warnings, nil
}

// validate checks what no single variable can: the sidecar's listeners, its readiness port and
// Envoy's admin included, need distinct ports.
func (c *Config) validate(errs *api.FieldErrors) {
	type use struct {
		env  string
		port uint16
	}
	sc := c.Injector.SidecarContainer
	dns := c.Injector.BuiltinDNS
	uses := []use{
		{"the sidecar's readiness port", api.SidecarReadinessPort},
		{"Envoy's admin port", api.DefaultEnvoyAdminPort},
		{settings.RedirectPortInbound.Env, sc.RedirectPortInbound},
		{settings.RedirectPortOutbound.Env, sc.RedirectPortOutbound},
	}
	if dns.Enabled {
		uses = append(uses, use{settings.BuiltinDNSPort.Env, dns.Port})
		if !sc.KumaDPVersion.AtLeast(2, 11) && dns.Port <= math.MaxUint16-EnvoyDNSPortOffset {
			uses = append(uses, use{"kuma-dp's Envoy DNS port (" + settings.BuiltinDNSPort.Env + " + 2)", dns.Port + EnvoyDNSPortOffset})
		}
	}
	if c.Injector.ApplicationProbeProxyPort != 0 {
		uses = append(uses, use{settings.ApplicationProbeProxyPort.Env, c.Injector.ApplicationProbeProxyPort})
	}
	for i, u := range uses {
		for _, other := range uses[:i] {
			if u.port == other.port {
				errs.Add(u.env, &api.FieldError{Value: strconv.Itoa(int(u.port)), Problem: "is also " + other.env,
					Accepted: "a port no other sidecar listener uses"})
			}
		}
	}
	if dns.Enabled {
		errs.Add(settings.BuiltinDNSPort.Env, CheckKumaDPPort(dns.Port, sc.KumaDPVersion, true))
	}
	errs.Add(settings.ApplicationProbeProxyPort.Env, CheckKumaDPPort(c.Injector.ApplicationProbeProxyPort, sc.KumaDPVersion, false))
}

// EnvoyDNSPortOffset puts the Envoy DNS listener of kuma-dp before 2.11, behind its CoreDNS, two
// ports above the DNS port, as Kuma's injector does.
const EnvoyDNSPortOffset = 2

// MaxKumaDPPort is the highest DNS or probe proxy port kuma-dp takes: its checks' bound is 65353,
// where 65535 was meant, and it refuses to start above it.
const MaxKumaDPPort = 65353

// CheckKumaDPPort refuses a DNS port (dns) or application probe proxy port that kuma-dp of
// version v would refuse to start with.
func CheckKumaDPPort(port uint16, v Version, dns bool) error {
	highest := MaxKumaDPPort
	if dns && !v.AtLeast(2, 11) {
		highest -= EnvoyDNSPortOffset // and its Envoy DNS port two above
	}
	if int(port) <= highest {
		return nil
	}
	return &api.FieldError{Value: strconv.Itoa(int(port)), Problem: "is above " + strconv.Itoa(highest) + ", which kuma-dp refuses",
		Accepted: "a port 1-" + strconv.Itoa(highest)}
}
