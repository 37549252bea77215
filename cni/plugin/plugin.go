// Package plugin is kuma-cni: a chained CNI plugin that, when a pod's network is set up, installs
// the pod's transparent-proxy rules in its network namespace with the engine kuma-init uses, so
// that pods need no privileged init container.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/initcontainer"
)

// Versions are the CNI spec versions kuma-cni speaks.
var Versions = version.PluginSupports("0.3.1", "0.4.0", "1.0.0")

// lookupTimeout bounds a pod lookup, retries included: ADD holds up the pod's start.
const lookupTimeout = 10 * time.Second

// Plugin runs kuma-cni's commands.
type Plugin struct {
	// Pods looks pods up; nil reads the netconf's kubeconfig.
	Pods PodSource
	// Installer applies the rules; nil runs the real tools.
	Installer *initcontainer.Installer
	// Stderr receives the logs.
	Stderr *os.File
}

// podArgs are the CNI_ARGS Kubernetes runtimes pass.
type podArgs struct {
	types.CommonArgs
	K8S_POD_NAME      types.UnmarshallableString
	K8S_POD_NAMESPACE types.UnmarshallableString
}

// call is one command's parsed input.
type call struct {
	conf      *cni.NetConf
	namespace string
	name      string
	log       *slog.Logger
}

func (p *Plugin) parse(args *skel.CmdArgs) (*call, error) {
	conf := &cni.NetConf{}
	if err := json.Unmarshal(args.StdinData, conf); err != nil {
		return nil, netconfError("", "the network configuration is not JSON", err)
	}
	if err := version.ParsePrevResult(&conf.NetConf); err != nil {
		return nil, netconfError("prevResult.", "the previous result", err)
	}
	level, err := logLevel(conf.LogLevel)
	if err != nil {
		return nil, err
	}
	var pa podArgs
	pa.IgnoreUnknown = true
	if err := types.LoadArgs(args.Args, &pa); err != nil {
		return nil, fmt.Errorf("kuma-cni: CNI_ARGS %q: %s; accepted: KEY=value pairs separated by ';', such as K8S_POD_NAMESPACE=demo;K8S_POD_NAME=app",
			args.Args, strings.TrimPrefix(err.Error(), "ARGS: "))
	}
	stderr := p.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	c := &call{conf: conf, namespace: string(pa.K8S_POD_NAMESPACE), name: string(pa.K8S_POD_NAME)}
	c.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With(
		"plugin", cni.PluginType, "pod", c.namespace+"/"+c.name, "container", args.ContainerID)
	return c, nil
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
	var l slog.Level
	if text == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(text)); err != nil {
		return 0, fmt.Errorf("kuma-cni: %s %q is not a log level; accepted: debug, info, warn or error", field, text)
	}
	return l, nil
}

// Add installs the pod's rules in its network namespace and passes the previous result on.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	start := time.Now()
	c, err := p.parse(args)
	if err != nil {
		return err
	}
	r, fetched, err := p.podRules(c)
	if err != nil || r == nil {
		if err != nil {
			c.log.Error("ADD failed", "error", err)
			return err
		}
		return c.passOn()
	}
	installed := time.Now()
	err = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		_, err := p.installer().Install(context.Background(), r.cfg, r.host)
		return err
	})
	if err != nil {
		err = fmt.Errorf("kuma-cni: pod %s/%s: installing the transparent-proxy rules in %s: %w", c.namespace, c.name, args.Netns, err)
		c.log.Error("ADD failed", "error", err)
		return err
	}
	c.log.Debug("rules installed", "lookup", fetched.Sub(start), "install", time.Since(installed), "total", time.Since(start))
	return c.passOn()
}

// Check verifies the pod's rules are those of its configuration.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := p.parse(args)
	if err != nil {
		return err
	}
	r, _, err := p.podRules(c)
	if err != nil || r == nil {
		return err
	}
	return ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		if err := p.installer().Check(context.Background(), r.cfg, r.host); err != nil {
			return fmt.Errorf("kuma-cni: pod %s/%s: %w", c.namespace, c.name, err)
		}
		return nil
	})
}

// Del has nothing to undo: the rules live in the pod's network namespace and go with it.
func (p *Plugin) Del(*skel.CmdArgs) error { return nil }

// rules is what the pod's rules are made of: its effective configuration, and what they need of
// the host.
type rules struct {
	cfg  *api.TransparentProxyConfig
	host initcontainer.Host
}

// podRules returns the pod's rules, or nil when the pod is not one of ours to handle: not a
// Kubernetes pod, in an excluded namespace, or not injected.
func (p *Plugin) podRules(c *call) (*rules, time.Time, error) {
	if c.name == "" || c.namespace == "" {
		c.log.Debug("not a Kubernetes pod: no K8S_POD_NAME and K8S_POD_NAMESPACE in CNI_ARGS")
		return nil, time.Now(), nil
	}
	if slices.Contains(c.conf.Kubernetes.ExcludeNamespaces, c.namespace) {
		c.log.Debug("namespace excluded")
		return nil, time.Now(), nil
	}
	pods := p.Pods
	if pods == nil {
		var err error
		if pods, err = NewAPIServer(c.conf.Kubernetes.Kubeconfig); err != nil {
			return nil, time.Now(), fmt.Errorf("kuma-cni: pod %s/%s: %w", c.namespace, c.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	pod, err := pods.Pod(ctx, c.namespace, c.name)
	fetched := time.Now()
	if err != nil {
		return nil, fetched, fmt.Errorf("kuma-cni: pod %s/%s: %w", c.namespace, c.name, err)
	}
	a := pod.Metadata.Annotations
	if a[api.AnnotationSidecarInjected] != "true" {
		c.log.Debug("not injected")
		return nil, fetched, nil
	}
	cfg, err := api.ParseTransparentProxyConfig([]byte(a[api.AnnotationTransparentProxyConfig]))
	var host initcontainer.Host
	if err == nil {
		host, err = hostOf(cfg)
	}
	if err != nil {
		return nil, fetched, fmt.Errorf("kuma-cni: pod %s/%s: annotation %s:\n%w", c.namespace, c.name, api.AnnotationTransparentProxyConfig, err)
	}
	return &rules{cfg, host}, fetched, nil
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

// passOn prints the previous result unchanged, or an empty result of the configuration's version
// where kuma-cni runs alone (a Multus attachment).
func (c *call) passOn() error {
	if c.conf.PrevResult != nil {
		return types.PrintResult(c.conf.PrevResult, c.conf.CNIVersion)
	}
	return types.PrintResult(&current.Result{CNIVersion: current.ImplementedSpecVersion}, c.conf.CNIVersion)
}
