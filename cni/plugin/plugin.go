// Package plugin is kuma-cni: a chained CNI plugin that, when a pod's network is set up, installs
// the pod's transparent-proxy rules in its network namespace with the engine kuma-init uses, so
// that pods need no privileged init container.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types020 "github.com/containernetworking/cni/pkg/types/020"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/relay"
	"github.com/meshinit/meshinit/initcontainer"
)

// Versions are the CNI spec versions kuma-cni speaks. It answers each in that version (the
// previous result, converted if need be), so that a provider's conflist works whichever it
// declares.
var Versions = version.PluginSupports(cni.SupportedVersions...)

// defaultVersion is the version of a configuration that declares none, as libcni and skel read it.
const defaultVersion = "0.1.0"

// lookupTimeout bounds a pod lookup, retries included: ADD holds up the pod's start.
const lookupTimeout = 10 * time.Second

// Plugin runs kuma-cni's commands.
type Plugin struct {
	// Pods looks pods up; nil reads the netconf's kubeconfig.
	Pods PodSource
	// Installer applies the rules; nil runs the real tools.
	Installer *initcontainer.Installer
	// Stderr receives the logs; nil is os.Stderr.
	Stderr io.Writer
	// OwnNetNS is the plugin's own network namespace, which never gets rules; empty is the
	// process's (/proc/self/ns/net).
	OwnNetNS string
}

// podArgs are the CNI_ARGS Kubernetes runtimes pass.
type podArgs struct {
	types.CommonArgs
	K8S_POD_NAME      types.UnmarshallableString
	K8S_POD_NAMESPACE types.UnmarshallableString
}

// call is one command: its parsed input, its log and what it did.
type call struct {
	command   string
	start     time.Time
	conf      *cni.NetConf
	namespace string
	name      string
	container string
	log       *slog.Logger
	relay     *relay.Sender
	// result is what the command did when it did not fail (relay's results).
	result string
	// note says why a pod was skipped, or how long the parts of an ADD took.
	note []any
}

// begin starts a command: it reads the network configuration, and from then on logs to stderr
// and, when the configuration names install-cni's socket, to install-cni as well. Errors are the
// configuration's; finish reports them.
func (p *Plugin) begin(command string, args *skel.CmdArgs) (*call, error) {
	stderr := p.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	c := &call{command: command, start: time.Now(), conf: &cni.NetConf{}, container: args.ContainerID}
	c.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With(c.attrs()...)
	if err := json.Unmarshal(args.StdinData, c.conf); err != nil {
		return c, netconfError("", "the network configuration is not JSON", err)
	}
	if c.conf.LogSocket != "" {
		// Without install-cni (a rollout replacing it, or none on the node) stderr alone.
		c.relay, _ = relay.Dial(c.conf.LogSocket)
	}
	var pa podArgs
	pa.IgnoreUnknown = true
	argsErr := types.LoadArgs(args.Args, &pa)
	c.namespace, c.name = string(pa.K8S_POD_NAMESPACE), string(pa.K8S_POD_NAME)
	level, levelErr := logLevel(c.conf.LogLevel)
	handlers := []slog.Handler{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})}
	if c.relay != nil {
		handlers = append(handlers, slog.NewJSONHandler(c.relay, &slog.HandlerOptions{Level: level, ReplaceAttr: durationText}))
	}
	c.log = slog.New(slog.NewMultiHandler(handlers...)).With(c.attrs()...)
	switch {
	case levelErr != nil:
		return c, levelErr
	case argsErr != nil:
		return c, fmt.Errorf("kuma-cni: CNI_ARGS %q: %s; accepted: KEY=value pairs separated by ';', such as K8S_POD_NAMESPACE=demo;K8S_POD_NAME=app",
			args.Args, strings.TrimPrefix(argsErr.Error(), "ARGS: "))
	}
	if err := checkPodArgs(c.namespace, c.name); err != nil {
		return c, fmt.Errorf("kuma-cni: CNI_ARGS %q: %w", args.Args, err)
	}
	if c.conf.CNIVersion == "" {
		c.conf.CNIVersion = defaultVersion
	}
	if err := version.ParsePrevResult(&c.conf.NetConf); err != nil {
		return c, netconfError("prevResult.", "the previous result", err)
	}
	return c, nil
}

// durationText writes durations as their text (15.7ms), which install-cni logs as it gets it, and
// not as JSON's nanoseconds.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func (c *call) attrs() []any {
	pod := c.namespace + "/" + c.name
	if c.namespace == "" && c.name == "" {
		pod = ""
	}
	return []any{"plugin", cni.PluginType, "command", c.command, "pod", pod, "container", c.container}
}

// finish logs how the command ended, tells install-cni, and returns err.
func (c *call) finish(err error) error {
	result := c.result
	elapsed := time.Since(c.start)
	if err != nil {
		result = relay.ResultFailed
		c.log.Error(c.command+" failed", "error", err)
	} else {
		level := slog.LevelDebug
		if result == relay.ResultInstalled {
			level = slog.LevelInfo
		}
		c.log.Log(context.Background(), level, c.command+" "+result, append(c.note, "took", elapsed)...)
	}
	o := relay.Outcome{Command: c.command, Result: result, Seconds: elapsed.Seconds(), Namespace: c.namespace, Pod: c.name}
	if err != nil {
		o.Error = err.Error()
	}
	c.relay.Send(o)
	_ = c.relay.Close()
	return err
}

// netconfError words a network configuration that does not decode: a value of the wrong type,
// named by its key under prefix, or else err after what.
func netconfError(prefix, what string, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return fmt.Errorf("kuma-cni: %s: %w", what, err)
	}
	accepted := map[reflect.Kind]string{reflect.Slice: "an array", reflect.Struct: "an object", reflect.Map: "an object",
		reflect.String: "a string", reflect.Bool: "true or false"}[te.Type.Kind()]
	if accepted == "" {
		accepted = "a number"
	}
	return fmt.Errorf("kuma-cni: the network configuration's %s%s is a JSON %s; accepted: %s", prefix, te.Field, te.Value, accepted)
}

// logLevel reads the level: CNI_LOG_LEVEL in the environment, else the netconf's log_level.
func logLevel(conf string) (slog.Level, error) {
	text, field := conf, "log_level"
	if env := os.Getenv("CNI_LOG_LEVEL"); env != "" {
		text, field = env, "CNI_LOG_LEVEL"
	}
	if text == "" {
		return slog.LevelInfo, nil
	}
	l, ok := cni.ParseLogLevel(text)
	if !ok {
		return slog.LevelInfo, fmt.Errorf("kuma-cni: %s %q is not a log level; accepted: %s", field, text, cni.FormLogLevel)
	}
	return l, nil
}

// Add installs the pod's rules in its network namespace and passes the previous result on.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, err := p.begin("ADD", args)
	if err == nil {
		err = p.add(c, args)
	}
	return c.finish(err)
}

func (p *Plugin) add(c *call, args *skel.CmdArgs) error {
	r, err := p.podRules(c)
	if err != nil {
		return err
	}
	if r == nil {
		c.result = relay.ResultSkipped
		return c.passOn()
	}
	if err := p.notOwnNetNS(c, args.Netns); err != nil {
		return err
	}
	installed := time.Now()
	err = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		_, err := p.installer().Install(context.Background(), r.cfg, r.host)
		return err
	})
	if err != nil {
		return fmt.Errorf("kuma-cni: pod %s/%s: installing the transparent-proxy rules in %s: %w", c.namespace, c.name, args.Netns, err)
	}
	c.result = relay.ResultInstalled
	c.note = append(c.note, "lookup", r.fetched.Sub(c.start), "install", time.Since(installed))
	return c.passOn()
}

// Check verifies the pod's rules are those of its configuration.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := p.begin("CHECK", args)
	if err == nil {
		err = p.check(c, args)
	}
	return c.finish(err)
}

func (p *Plugin) check(c *call, args *skel.CmdArgs) error {
	r, err := p.podRules(c)
	if err != nil {
		return err
	}
	if r == nil {
		c.result = relay.ResultSkipped
		return nil
	}
	if err := p.notOwnNetNS(c, args.Netns); err != nil {
		return err
	}
	err = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		return p.installer().Check(context.Background(), r.cfg, r.host)
	})
	if err != nil {
		return fmt.Errorf("kuma-cni: pod %s/%s: %w", c.namespace, c.name, err)
	}
	c.result = relay.ResultOK
	return nil
}

// Del has nothing to undo: the rules live in the pod's network namespace and go with it. It never
// fails, as the spec asks of a DEL, even on a configuration ADD would refuse.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	c, _ := p.begin("DEL", args)
	c.result = relay.ResultOK
	return c.finish(nil)
}

// Status (CNI 1.1.0) says whether kuma-cni can serve ADDs: it needs the kubeconfig install-cni
// writes. Runtimes that ask report the node's network not ready meanwhile.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf := &cni.NetConf{}
	if err := json.Unmarshal(args.StdinData, conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "kuma-cni: the network configuration is not JSON", err.Error())
	}
	if p.Pods != nil || conf.Kubernetes.Kubeconfig == "" {
		return nil
	}
	if _, err := os.Stat(conf.Kubernetes.Kubeconfig); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "kuma-cni: no kubeconfig to read pods with (install-cni writes it)", err.Error())
	}
	return nil
}

// GC (CNI 1.1.0) has nothing to collect: kuma-cni keeps nothing outside the pods' namespaces.
func (p *Plugin) GC(*skel.CmdArgs) error { return nil }

// rules is what the pod's rules are made of: its effective configuration, and what they need of
// the host.
type rules struct {
	cfg     *api.TransparentProxyConfig
	host    initcontainer.Host
	fetched time.Time
}

// podRules returns the pod's rules, or nil when the pod is not one of ours to handle: not a
// Kubernetes pod, in an excluded namespace, or not injected.
func (p *Plugin) podRules(c *call) (*rules, error) {
	skip := func(why string) (*rules, error) {
		c.note = append(c.note, "reason", why)
		return nil, nil
	}
	if c.name == "" || c.namespace == "" {
		return skip("not a Kubernetes pod: no K8S_POD_NAME and K8S_POD_NAMESPACE in CNI_ARGS")
	}
	if slices.Contains(c.conf.Kubernetes.ExcludeNamespaces, c.namespace) {
		return skip("namespace excluded")
	}
	pods := p.Pods
	if pods == nil {
		var err error
		if pods, err = NewAPIServer(c.conf.Kubernetes.Kubeconfig); err != nil {
			return nil, fmt.Errorf("kuma-cni: pod %s/%s: %w", c.namespace, c.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	pod, err := pods.Pod(ctx, c.namespace, c.name)
	fetched := time.Now()
	if err != nil {
		return nil, fmt.Errorf("kuma-cni: pod %s/%s: %w", c.namespace, c.name, err)
	}
	a := pod.Metadata.Annotations
	if a[api.AnnotationSidecarInjected] != "true" {
		return skip("not injected")
	}
	if err := checkAdmitted(c.log, pod); err != nil {
		return nil, fmt.Errorf("kuma-cni: pod %s/%s: %w", c.namespace, c.name, err)
	}
	cfg, err := api.ParseTransparentProxyConfig([]byte(a[api.AnnotationTransparentProxyConfig]))
	var host initcontainer.Host
	if err == nil {
		host, err = hostOf(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("kuma-cni: pod %s/%s: annotation %s:\n%w", c.namespace, c.name, api.AnnotationTransparentProxyConfig, err)
	}
	return &rules{cfg, host, fetched}, nil
}

// hostOf is what the rules need besides the configuration. The plugin runs on the node, whose
// user database and resolv.conf are not the pod's: the proxy's user must be a UID, and DNS
// redirection relies on the webhook's captureAll.
func hostOf(cfg *api.TransparentProxyConfig) (initcontainer.Host, error) {
	uid, err := strconv.ParseUint(cfg.KumaDPUser, 10, 32)
	if err != nil {
		return initcontainer.Host{}, &api.FieldError{Field: cfg.Path(&cfg.KumaDPUser), Value: cfg.KumaDPUser,
			Problem: "is not a UID, and kuma-cni runs on the node, which does not know the pod's user names", Accepted: "a UID, such as 5678"}
	}
	return initcontainer.Host{ProxyUID: uint32(uid)}, nil
}

func (p *Plugin) installer() *initcontainer.Installer {
	if p.Installer == nil {
		p.Installer = &initcontainer.Installer{}
	}
	return p.Installer
}

// passOn prints the previous result in the configuration's version, or, where kuma-cni runs alone
// (a Multus attachment), an empty result of that version.
func (c *call) passOn() error {
	v := c.conf.CNIVersion
	if c.conf.PrevResult != nil {
		return types.PrintResult(c.conf.PrevResult, v)
	}
	// Results before 0.3.0 cannot be converted from an empty current one (no address to carry).
	if old, _ := version.GreaterThan("0.3.0", v); old {
		return (&types020.Result{CNIVersion: v}).Print()
	}
	return types.PrintResult(&current.Result{CNIVersion: current.ImplementedSpecVersion}, v)
}
