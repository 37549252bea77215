package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/test/standin"
	"github.com/meshinit/meshinit/webhook/inject"
)

// demoPaths are the paths the demo sends traffic along, for its pod annotated with
// demoAnnotations.
var (
	demoAnnotations = map[string]string{api.AnnotationExcludeInboundPorts: "22", api.AnnotationExcludeOutboundPorts: "5432"}
	demoPaths       = []path{
		both(outbound),
		only(standin.IPv4, with(outbound, "outbound TCP to 5432 (excluded)", standin.RemoteDB, "remote-db")),
		only(standin.IPv4, outboundOfProxy),
		both(inbound),
		only(standin.IPv4, with(inbound, "inbound TCP to 22 (excluded)", standin.SSHPort, "app-ssh")),
		only(standin.IPv4, localhost),
		both(dns),
		only(standin.IPv4, dnsOfProxy),
	}
)

// demoRan says that TestDemo ran, so that TestMain tells how it cleaned up.
var demoRan bool

// TestDemo is `make demo`: the whole product on this machine, narrated on standard output. It
// uses the binaries `make build` put in bin/.
func TestDemo(t *testing.T) {
	prereq.Root(t)
	root := prereq.RepoRoot(t)
	bin := func(name string) string { return prereq.File(t, filepath.Join(root, "bin", name)) }
	injector, kumaInit := bin("injector"), bin("kuma-init")
	out := os.Stdout
	// Interrupted, the test fails at its next step and its cleanups still run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{t: t, ctx: ctx, out: out, steps: 7}
	var netns []string
	t.Cleanup(func() { d.cleanedUp(netns) })

	fmt.Fprintln(out, "meshinit demo: a labelled namespace, an injected pod, and its rules proven on real traffic")
	fmt.Fprintln(out)
	c := startCluster(ctx, t, injector, nil, d.begin)

	const namespace, name = "demo", "web"
	ready := d.begin(fmt.Sprintf("namespace %s labelled %s=enabled; pod %s/%s created, annotated %s",
		namespace, api.LabelSidecarInjection, namespace, name, annotations(demoAnnotations)))
	c.meshedNamespace(ctx, t, namespace)
	pod, warnings, err := c.create(ctx, app(namespace, name, demoAnnotations))
	if err != nil {
		t.Fatal(err)
	}
	ready()
	cfg, err := api.ParseTransparentProxyConfig([]byte(pod.Annotations[api.AnnotationTransparentProxyConfig]))
	if err != nil {
		t.Fatal(err)
	}
	d.showPod(pod, cfg, c.injectionOf(t, namespace, name), warnings)

	p := standin.New(t, cfg)
	netns = append(netns, p.Pod.Name, p.Remote.Name)
	cmd := asKubelet(t, pod, inject.InitName, kumactl(t, kumaInit))
	ready = d.begin(fmt.Sprintf("kuma-init, as injected (%s is %s): %s, in network namespace %s", cmd[0], kumaInit, strings.Join(cmd, " "), p.Pod.Name))
	output := p.Pod.Run(t, cmd[0], cmd[1:]...)
	ready()
	d.indent(strings.TrimSpace(output))

	ready = d.begin(fmt.Sprintf("real traffic, with stand-ins for kuma-dp (UID %d, on :%d, :%d and :%d), the app (:%d, :%d) and a remote host (%s, %s: web :%d, database :%d, DNS :%d)",
		p.ProxyUID, cfg.Redirect.Outbound.Port, cfg.Redirect.Inbound.Port, cfg.Redirect.DNS.Port, standin.AppPort, standin.SSHPort,
		p.Remote.IPv4, p.Remote.IPv6, standin.RemoteWeb, standin.RemoteDB, standin.DNSPort))
	verdicts := d.send(p, demoPaths)
	ready()
	d.table(verdicts)

	bad := map[string]string{api.AnnotationExcludeInboundPorts: "22,80000"}
	ready = d.begin(fmt.Sprintf("a pod annotated %s is refused", annotations(bad)))
	_, _, err = c.create(ctx, app(namespace, "bad", bad))
	if err == nil {
		t.Fatalf("a pod annotated %s was admitted", annotations(bad))
	}
	ready()
	d.indent(err.Error())

	failed := slices.ContainsFunc(verdicts, func(v standin.Verdict) bool { return !v.OK() })
	fmt.Fprintln(out)
	if failed {
		t.Errorf("some traffic did not go where it should (see the table)")
	} else {
		fmt.Fprintf(out, "All %d paths went where they should.\n", len(verdicts))
	}
}

// demo narrates the steps.
type demo struct {
	t     *testing.T
	ctx   context.Context
	out   io.Writer
	step  int
	steps int
}

// begin shows a step as it starts; the function it returns shows how long it took, and stops the
// demo if it was interrupted meanwhile.
func (d *demo) begin(what string) (ready func()) {
	d.step++
	fmt.Fprintf(d.out, "[%d/%d] %s ... ", d.step, d.steps, what)
	start := time.Now()
	return func() {
		d.t.Helper()
		fmt.Fprintf(d.out, "%.1fs\n", time.Since(start).Seconds())
		if d.ctx.Err() != nil {
			d.t.Fatal("interrupted")
		}
	}
}

func (d *demo) indent(text string) {
	for line := range strings.SplitSeq(text, "\n") {
		fmt.Fprintln(d.out, "      "+line)
	}
}

// showPod prints what the injector made of the pod: its containers, why and with which settings,
// and its effective configuration, cfg.
func (d *demo) showPod(pod *corev1.Pod, cfg *api.TransparentProxyConfig, inj injection, warnings []string) {
	w := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "      injected (%s):\n", inj.Reason)
	for _, c := range pod.Spec.InitContainers {
		detail := strings.Join(slices.Concat(c.Command, c.Args), " ")
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			detail = "native sidecar (restartPolicy: Always), " + detail
		}
		fmt.Fprintf(w, "      init container\t%s\t%s\t%s\n", c.Name, c.Image, detail)
	}
	for _, c := range pod.Spec.Containers {
		fmt.Fprintf(w, "      container\t%s\t%s\t\n", c.Name, c.Image)
	}
	w.Flush()
	fmt.Fprintln(d.out, "      where each setting came from (the injector's log):")
	w = tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	for _, s := range inj.Settings {
		fmt.Fprintf(w, "        %s\t%s\t%s\n", s.Name, s.Value, s.Source)
	}
	w.Flush()
	for _, warning := range warnings {
		fmt.Fprintln(d.out, "      admission warning: "+warning)
	}
	fmt.Fprintf(d.out, "      the effective configuration (%s):\n", api.AnnotationTransparentProxyConfig)
	doc, err := cfg.Marshal()
	if err != nil {
		d.t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(doc)), "\n") {
		fmt.Fprintln(d.out, "        "+line)
	}
}

// send sends every path's probe in each of its families.
func (d *demo) send(p *standin.Pod, paths []path) []standin.Verdict {
	var verdicts []standin.Verdict
	for _, pa := range paths {
		for _, f := range pa.families {
			verdicts = append(verdicts, p.Send(d.t, f, pa.Probe))
		}
	}
	return verdicts
}

// table prints the verdicts: path, where the traffic went, what was expected, the verdict.
func (d *demo) table(verdicts []standin.Verdict) {
	w := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "      path\tfamily\tsent to\tlanded on\toriginal destination\texpected\tverdict")
	for _, v := range verdicts {
		landed, orig := v.Landed, v.OriginalDst.String()
		if v.Err != nil {
			landed, orig = "(nothing: "+v.Err.Error()+")", "-"
		}
		expected := v.Lands
		if v.Redirected {
			expected += ", redirected"
		}
		verdict := "ok"
		if !v.OK() {
			verdict = "WRONG: " + v.Problem
		}
		fmt.Fprintf(w, "      %s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Family, v.Dst, landed, orig, expected, verdict)
	}
	w.Flush()
}

// cleanedUp says what was removed, once the test's cleanups have run; it checks the network
// namespaces are gone.
func (d *demo) cleanedUp(netns []string) {
	left := ""
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, name := range netns {
			if strings.Contains(string(out), name) {
				left += " " + name
			}
		}
	}
	if left != "" {
		d.t.Errorf("network namespaces left behind:%s", left)
		return
	}
	fmt.Fprintln(d.out, "Cleaned up: the injector and the control plane stopped, the network namespaces (and their rules) and the temporary files removed.")
}

// annotations spells annotations as a pod's YAML would, sorted.
func annotations(a map[string]string) string {
	var parts []string
	for k, v := range a {
		parts = append(parts, fmt.Sprintf("%s: %q", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
