package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/node/hoststate"
	"github.com/meshinit/meshinit/test/nodechart"
	"github.com/meshinit/meshinit/test/prereq"
)

// nodeEnv is the one-node cluster (test/node) that this package's tests on a real kubelet share:
// one per test binary, since a node costs seconds to start and stop. It holds the machine's node
// lock from its start until TestMain stops it and checks that the host is as it was before.
type nodeEnv struct {
	*nodechart.Cluster
	lock   *node.Lock
	before hoststate.State
	// ports are the pods' veths seen on the node's bridge, which must go with the node.
	ports map[string]bool
	// dns is the pods' nameserver, on the node's bridge.
	dns *nameserver
}

// The node the tests share, started by the first test that needs it.
var shared struct {
	env *nodeEnv
	err error
}

// TestMain stops the shared node, if a test started it, and fails the run if the host is not as
// it was before the node (its veths, mounts, cgroups, processes, files, rules, sysctls).
func TestMain(m *testing.M) {
	// envtest, which starts the node's control plane, logs through controller-runtime: without a
	// logger, it says so with a stack trace, in the middle of the demo's story.
	ctrllog.SetLogger(logr.Discard())
	code := m.Run()
	if shared.env != nil {
		// A Ctrl-C now would leave the node for the next run to clean up: let it finish.
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		if code != 0 && !interrupted {
			shared.env.DumpLogs(func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
		}
		if err := shared.env.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		} else if demoRan {
			fmt.Println("Cleaned up: the node stopped, its processes, pods, mounts, cgroups, bridge and veths, files and sysctls undone; the host is as it was before.")
		}
	}
	os.Exit(code)
}

// onNode returns the shared node, starting it if no test has yet: logf hears of the start's
// steps. A missing prerequisite (root, a binary of bin/, the images of bin/images) fails the test
// under CI=true and skips it elsewhere.
func onNode(ctx context.Context, t *testing.T, logf func(string, ...any)) *nodeEnv {
	t.Helper()
	node.Prerequisites(t)
	repo := prereq.RepoRoot(t)
	for _, name := range nodechart.Images {
		prereq.Image(t, repo, name)
	}
	if shared.env == nil && shared.err == nil {
		shared.env, shared.err = startNode(ctx, repo, logf)
	}
	if shared.err != nil {
		t.Fatalf("the shared node: %v", shared.err)
	}
	return shared.env
}

func startNode(ctx context.Context, repo string, logf func(string, ...any)) (_ *nodeEnv, err error) {
	lock, err := node.AcquireLock(ctx, logf)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	// What a crashed run left is not this run's to see.
	if err := lock.Recover(logf); err != nil {
		return nil, err
	}
	before, err := hoststate.Take()
	if err != nil {
		return nil, err
	}
	n, err := node.New(ctx, node.Options{Lock: lock, Logf: logf})
	if err != nil {
		return nil, err
	}
	e := &nodeEnv{Cluster: nodechart.New(n, repo), lock: lock, before: before, ports: map[string]bool{}}
	if e.dns, err = startNameserver(); err != nil {
		n.Stop()
		return nil, err
	}
	return e, nil
}

// stop stops the node and compares the host with what it was before.
func (e *nodeEnv) stop() error {
	defer e.lock.Release()
	e.notePorts()
	e.dns.Close()
	if err := e.Stop(); err != nil {
		return err
	}
	after, err := hoststate.Take()
	if err != nil {
		return err
	}
	if c := hoststate.Changes(e.before, after); c != "" {
		return fmt.Errorf("the host is not as it was before the node:\n%s", c)
	}
	if len(e.ports) == 0 {
		return nil // no pod ran: a test stopped before
	}
	return hoststate.PortsGone(slices.Collect(maps.Keys(e.ports)))
}

// notePorts remembers the veths on the node's bridge, to check after the node that they went.
func (e *nodeEnv) notePorts() {
	ports, _ := hoststate.BridgePorts()
	for _, p := range ports {
		e.ports[p] = true
	}
}

// nameserver is the pods' DNS server: it listens on the node's bridge, port 53, answers each
// query with "answer to " and the query, and remembers from where each came.
type nameserver struct {
	pc   *net.UDPConn
	mu   sync.Mutex
	from []string
}

func startNameserver() (*nameserver, error) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: node.BridgeIP, Port: 53})
	if err != nil {
		return nil, fmt.Errorf("the pods' nameserver: %w", err)
	}
	ns := &nameserver{pc: pc}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.from = append(ns.from, from.String())
			ns.mu.Unlock()
			pc.WriteToUDPAddrPort(append([]byte("answer to "), buf[:n]...), from)
		}
	}()
	return ns, nil
}

func (ns *nameserver) Close() { ns.pc.Close() }

// queriesFrom says how many queries came from an address.
func (ns *nameserver) queriesFrom(ip string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	n := 0
	for _, f := range ns.from {
		if host, _, _ := net.SplitHostPort(f); host == ip {
			n++
		}
	}
	return n
}
