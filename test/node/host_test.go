package node_test

import (
	"testing"

	"github.com/meshinit/meshinit/test/node/hoststate"
)

// takeHost records the host as hoststate sees it.
func takeHost(t *testing.T) hoststate.State {
	t.Helper()
	h, err := hoststate.Take()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// diffHost reports every difference between two records of the host.
func diffHost(t *testing.T, before, after hoststate.State) {
	t.Helper()
	if c := hoststate.Changes(before, after); c != "" {
		t.Errorf("the host is not as it was before the node:\n%s", c)
	}
}

// bridgePorts lists the links on the node's bridge: its pods' veths.
func bridgePorts(t *testing.T) []string {
	t.Helper()
	ports, err := hoststate.BridgePorts()
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// portsGone checks that the node's veths went with it.
func portsGone(t *testing.T, ports []string) {
	t.Helper()
	if err := hoststate.PortsGone(ports); err != nil {
		t.Error(err)
	}
}
