// Package relay carries kuma-cni's log lines and the outcome of each of its commands to
// install-cni on the same node, so that they reach the DaemonSet's log (kubectl logs) and its
// metrics. kuma-cni is a short-lived process the container runtime starts, whose stderr only the
// runtime's own log sees.
//
// The carrier is a unix datagram socket in a directory of install-cni's own on the host: one
// datagram per record, so there is no framing and no partial line; the kernel's receive queue of
// the socket is the only buffer, bounded by its size, and kuma-cni sends without waiting
// (MSG_DONTWAIT): when install-cni is not running (a DaemonSet rollout) or falls behind, a record is
// dropped rather than kuma-cni delayed, since it holds up a pod's start. kuma-cni writes every line
// to its stderr too, so the runtime's log keeps them all. A log file would need rotation and a
// reader that follows it across rotations, and would grow on the host when nobody reads it; a
// stream socket would need framing and a writer that can block.
package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// SocketName is the socket's file in install-cni's run directory.
const SocketName = "kuma-cni.sock"

// maxRecord bounds a record: a longer one is cut, so that one huge error cannot exceed what a
// datagram may hold.
const maxRecord = 32 << 10

// Outcome is what one kuma-cni command did, for install-cni's metrics and repair.
type Outcome struct {
	// Command is ADD, CHECK or DEL.
	Command string `json:"command"`
	// Result is ResultInstalled, ResultSkipped or ResultFailed for ADD; ResultOK or ResultFailed
	// otherwise.
	Result    string  `json:"result"`
	Seconds   float64 `json:"seconds"`
	Namespace string  `json:"namespace,omitempty"`
	Pod       string  `json:"pod,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Dropped is how many of the command's records the socket could not take.
	Dropped int `json:"dropped,omitempty"`
}

// Results of a command.
const (
	ResultInstalled = "installed"
	ResultSkipped   = "skipped"
	ResultOK        = "ok"
	ResultFailed    = "failed"
)

// record is one datagram: a log record (slog's JSON) or an outcome; Kind tells which.
type record struct {
	Kind    string   `json:"kind"`
	Outcome *Outcome `json:"outcome,omitempty"`
}

const kindOutcome = "outcome"

// Sender sends records to install-cni; a nil *Sender sends nothing.
type Sender struct {
	fd      int
	dropped atomic.Int64
}

// Dial connects to the socket at path. It fails when install-cni is not listening there, and the
// caller goes on with stderr alone.
func Dial(path string) (*Sender, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connecting to %s: %w", path, err)
	}
	return &Sender{fd: fd}, nil
}

// Write sends p as one datagram, and never waits: a record the socket cannot take now is dropped.
// It always reports success, so that a log handler writing to it goes on to its other outputs.
func (s *Sender) Write(p []byte) (int, error) {
	if s == nil {
		return len(p), nil
	}
	n := len(p)
	if len(p) > maxRecord {
		p = append(p[:maxRecord-1:maxRecord-1], '\n')
	}
	if unix.Send(s.fd, p, unix.MSG_DONTWAIT) != nil {
		s.dropped.Add(1)
	}
	return n, nil
}

// Send sends an outcome, with the number of records dropped before it.
func (s *Sender) Send(o Outcome) {
	if s == nil {
		return
	}
	o.Dropped = int(s.dropped.Load())
	data, err := json.Marshal(record{Kind: kindOutcome, Outcome: &o})
	if err == nil {
		_, _ = s.Write(data)
	}
}

// Close closes the socket.
func (s *Sender) Close() error {
	if s == nil {
		return nil
	}
	return unix.Close(s.fd)
}

// Receiver is install-cni's end: it reads records and hands each to a Handler.
type Receiver struct {
	conn *net.UnixConn
	path string
	// queue holds what was read and is not handled yet: reading only moves records from the
	// kernel's queue, which holds few (net.unix.max_dgram_qlen, 10 by default), into this one, so
	// that a burst of pods starting at once does not overflow it while the records are logged.
	queue   chan []byte
	dropped atomic.Uint64
}

// queueSize bounds the records read and not yet handled.
const queueSize = 1024

// Listen makes the socket at path, in a directory it creates (mode 0700: only root, whose
// kuma-cni runs, may send), replacing a socket a predecessor left.
func Listen(path string) (*Receiver, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &Receiver{conn: conn, path: path, queue: make(chan []byte, queueSize)}, nil
}

// Handler is told of each record Serve reads: a log record as slog's JSON object, or an outcome.
type Handler struct {
	Log     func(fields map[string]any)
	Outcome func(Outcome)
}

// Serve reads records until Close, and passes each to h. A datagram that is not a record is
// passed to Log as its text.
func (r *Receiver) Serve(h Handler) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for data := range r.queue {
			handle(h, data)
		}
	}()
	defer func() { close(r.queue); <-done }()
	for {
		buf := make([]byte, maxRecord)
		n, err := r.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case r.queue <- buf[:n]:
		default:
			r.dropped.Add(1)
		}
	}
}

// Dropped is how many records arrived while the queue was full.
func (r *Receiver) Dropped() uint64 { return r.dropped.Load() }

func handle(h Handler, data []byte) {
	var rec record
	if json.Unmarshal(data, &rec) == nil && rec.Kind == kindOutcome && rec.Outcome != nil {
		h.Outcome(*rec.Outcome)
		return
	}
	fields := map[string]any{}
	if err := json.Unmarshal(data, &fields); err != nil {
		fields = map[string]any{"msg": strings.TrimSpace(string(data))}
	}
	h.Log(fields)
}

// Close stops Serve and removes the socket: a kuma-cni started after it logs to stderr alone.
func (r *Receiver) Close() error {
	err := r.conn.Close()
	if rerr := os.Remove(r.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}
