// Command kuma-dp stands in for Kuma's kuma-dp in the test images: small, with no Envoy and no
// control plane, but with the listeners an injected pod's traffic and kubelet's probes reach, so
// that tests on a real kubelet can check where traffic goes.
//
//	kuma-dp run [--log-level=debug|info|warn|error] [--concurrency=N] [--transparent-proxy-config=FILE] [--cp-address=URL] [other flags, ignored]
//
// It reads the transparent-proxy configuration document from --transparent-proxy-config (without
// it: the defaults, with KUMA_DNS_ENABLED and KUMA_DNS_PROXY_PORT), and serves, as kuma-dp does:
//   - the outbound and inbound redirect ports (TCP, IPv4 and IPv6): each connection is forwarded to
//     its original destination (SO_ORIGINAL_DST); inbound ones from 127.0.0.6 or ::6, Envoy's
//     passthrough source, which kuma-init's rules let through;
//   - the DNS port (UDP and TCP, on 127.0.0.1 and ::1) when DNS redirection is on: queries are
//     forwarded to the nameservers of /etc/resolv.conf;
//   - GET /ready on KUMA_READINESS_PORT (9902): READY;
//   - the application probe proxy on KUMA_APPLICATION_PROBE_PROXY_PORT (9001, 0 for none), which
//     probes the app at INSTANCE_IP (the pod's address) for kubelet's rewritten probes.
//
// It logs each connection and probe to stdout, records them with how it was started (Record, at
// GET /standin on the readiness port), runs as whatever UID it is started with, takes SIGUSR2
// (kuma-dp's drain) without stopping, and exits 0 on SIGTERM or SIGINT.
//
// Started as killall (a link to it in the image), it is the killall of kuma-dp's preStop hook:
//
//	killall [-SIGNAL | -s SIGNAL] NAME...
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/images/kumadp/seen"
)

func main() {
	if filepath.Base(os.Args[0]) == "killall" {
		os.Exit(killall(os.Args[1:], "/proc", os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kuma-dp:", err)
		os.Exit(1)
	}
}

// Settings are what the stand-in serves.
type Settings struct {
	TP *api.TransparentProxyConfig
	// ReadinessPort and ProbeProxyPort are kuma-dp's; ProbeProxyPort 0 turns the probe proxy off.
	ReadinessPort, ProbeProxyPort uint16
	// PodIP is where the probe proxy probes the app; invalid for loopback.
	PodIP netip.Addr
	// ResolvConf names the DNS upstreams.
	ResolvConf string
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New(`usage: kuma-dp run [flags]: only "run" is stood in for`)
	}
	s, level, err := parse(args[1:], os.Getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
	log.Info("starting", "uid", os.Getuid(), "outbound", s.TP.Redirect.Outbound.Port,
		"inbound", s.TP.Redirect.Inbound.Port, "dns", s.TP.Redirect.DNS.Enabled, "dnsPort", s.TP.Redirect.DNS.Port,
		"readiness", s.ReadinessPort, "probeProxy", s.ProbeProxyPort)
	rec := newRecorder()
	// kuma-dp starts draining on SIGUSR2, which the injected preStop sends (killall -USR2 kuma-dp):
	// the stand-in only says it got it, and goes on until SIGTERM.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	go func() {
		for range usr2 {
			log.Info("SIGUSR2: draining")
			rec.add(seen.Event{Kind: "signal", Detail: "USR2"})
		}
	}()
	return serve(ctx, s, log, rec)
}

// parse reads kuma-dp's flags, tolerating the ones the stand-in does not know, and the environment.
func parse(args []string, getenv func(string) string) (*Settings, slog.Level, error) {
	fs := pflag.NewFlagSet("kuma-dp run", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Int("concurrency", 0, "Envoy's worker threads: accepted, not used")
	tpFile := fs.String("transparent-proxy-config", "", "the transparent-proxy configuration document")
	fs.String("cp-address", "", "the control plane: accepted, not used")
	if err := fs.Parse(args); err != nil {
		return nil, 0, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, 0, fmt.Errorf("--log-level: %w", err)
	}
	s := &Settings{TP: api.DefaultTransparentProxyConfig(), ResolvConf: "/etc/resolv.conf"}
	if *tpFile != "" {
		data, err := os.ReadFile(*tpFile)
		if err != nil {
			return nil, 0, fmt.Errorf("--transparent-proxy-config: %w", err)
		}
		if s.TP, err = api.ParseTransparentProxyConfig(data); err != nil {
			return nil, 0, fmt.Errorf("--transparent-proxy-config %s: %w", *tpFile, err)
		}
	} else {
		if v := getenv("KUMA_DNS_ENABLED"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, 0, fmt.Errorf("KUMA_DNS_ENABLED: %w", err)
			}
			s.TP.Redirect.DNS.Enabled = b
		}
		if err := port(getenv, "KUMA_DNS_PROXY_PORT", &s.TP.Redirect.DNS.Port); err != nil {
			return nil, 0, err
		}
	}
	s.ReadinessPort, s.ProbeProxyPort = api.SidecarReadinessPort, api.DefaultApplicationProbeProxyPort
	if err := port(getenv, "KUMA_READINESS_PORT", &s.ReadinessPort); err != nil {
		return nil, 0, err
	}
	if err := port(getenv, "KUMA_APPLICATION_PROBE_PROXY_PORT", &s.ProbeProxyPort); err != nil {
		return nil, 0, err
	}
	if v := getenv("INSTANCE_IP"); v != "" {
		ip, err := netip.ParseAddr(v)
		if err != nil {
			return nil, 0, fmt.Errorf("INSTANCE_IP: %w", err)
		}
		s.PodIP = ip
	}
	return s, level, nil
}

// port sets *p from the environment variable name, when it is set.
func port(getenv func(string) string, name string, p *uint16) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return fmt.Errorf("%s: %q is not a port number", name, v)
	}
	*p = uint16(n)
	return nil
}
