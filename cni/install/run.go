package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/relay"
	"github.com/meshinit/meshinit/cni/repair"
)

const (
	// settle is how long a burst of changes (a provider writing in place, our own writes) is let
	// finish before one pass acts on all of it: short against the one second heal budget.
	settle = 50 * time.Millisecond
	// retry is when a pass that failed is tried again, changes or not.
	retry = time.Second
)

// Run installs kuma-cni, serves /ready and /metrics on the configured addresses, relays kuma-cni's
// logs and results, repairs the node's pods, and keeps kuma-cni installed until ctx ends. Then it
// takes kuma-cni out if its DaemonSet is going (see leaving), and returns what went wrong doing
// that. With SLEEP=false it returns once kuma-cni is installed, and leaves it.
func (in *Installer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", in.cfg.ReadyAddr)
	if err != nil {
		return fmt.Errorf("READY_ADDR: %w", err)
	}
	srv := &http.Server{Handler: in, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	metricsAt := ""
	if in.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", in.cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", in.metrics.handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		metricsAt = mln.Addr().String()
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	// Background work (the relay, the repair) ends before Run returns.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	rep := in.startRepair(bg, &wg)
	in.startRelay(bg, &wg, rep)

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	for _, dir := range in.watched() {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	in.log.Info("starting", "chained", in.cfg.Chained, "netDir", in.cfg.NetDir, "mountedNetDir", in.cfg.MountedNetDir,
		"binDir", in.cfg.BinDir, "mountedBinDir", in.cfg.MountedBinDir, "confName", in.cfg.ConfName, "ready", ln.Addr().String(),
		"metrics", metricsAt, "logSocket", in.entry.LogSocket, "repair", rep != nil)
	// A predecessor killed mid-write left its temporary files; a write of ours cannot be under
	// way yet.
	if err := in.removeTemporaries(); err != nil {
		in.log.Warn(err.Error())
	}

	s := newSchedule()
	periodic := time.NewTicker(min(in.cfg.CheckInterval, in.cfg.TokenRefresh))
	defer periodic.Stop()
	for {
		select {
		case <-ctx.Done():
			in.setNotReady(slog.LevelInfo, "shutting down")
			return in.stop(context.WithoutCancel(ctx))
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("the file watch ended")
			}
			in.log.Debug("changed", "file", ev.Name, "op", ev.Op.String())
			s.after(settle)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("the file watch ended")
			}
			// Events may be lost (an overflow): the next pass looks at everything anyway.
			in.log.Warn("file watch: "+err.Error(), "dir", in.cfg.MountedNetDir)
			s.after(settle)
		case <-periodic.C:
			// Behind the watches, which a file system without inotify (some network or overlay
			// mounts) would leave blind, and a token read anew at least this often.
			s.after(0)
		case <-s.timer.C:
			s.pending = false
			if err := in.install(); err != nil {
				in.setNotReady(slog.LevelWarn, err.Error()+"; retrying")
				s.after(retry)
			} else if !in.cfg.Sleep && in.notReady.Load() == nil {
				in.log.Info("installed; SLEEP=false, so install-cni exits and leaves kuma-cni installed")
				return nil
			}
			in.passes.Add(1)
		}
	}
}

// watched are the directories whose changes may undo the installation: the net dir, the bin dir,
// and those of the service-account token and CA, which kubelet swaps by renaming a symlink.
func (in *Installer) watched() []string {
	var dirs []string
	for _, d := range []string{in.cfg.MountedNetDir, in.cfg.MountedBinDir, filepath.Dir(in.cfg.TokenFile), filepath.Dir(in.cfg.CAFile)} {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// stop takes kuma-cni out, or leaves it for the DaemonSet's next pod; see leaving.
func (in *Installer) stop(ctx context.Context) error {
	leave, why := in.leaving(ctx)
	if !leave {
		in.log.Info("kuma-cni stays installed: " + why)
		return in.removeTemporaries()
	}
	in.log.Info("taking kuma-cni out: " + why)
	return in.uninstall()
}

// startRelay listens on the socket kuma-cni sends its log lines and results to, and names it in
// kuma-cni's configuration. Without it (the run dir not mounted) kuma-cni logs to the runtime's
// log alone.
func (in *Installer) startRelay(ctx context.Context, wg *sync.WaitGroup, rep *repair.Repairer) {
	r, err := relay.Listen(filepath.Join(in.cfg.MountedRunDir, relay.SocketName))
	if err != nil {
		in.log.Warn("kuma-cni's log lines reach only the container runtime's log: "+err.Error(), "dir", in.cfg.MountedRunDir)
		return
	}
	in.entry.LogSocket = filepath.Join(in.cfg.RunDir, relay.SocketName)
	if in.standalone != nil {
		if in.standalone, err = newStandalone(in.standalone.path, in.cfg.NetworkName, in.cfg.NetworkVersion, in.entry); err != nil {
			in.log.Warn(err.Error())
		}
	}
	dropped := r.Dropped
	in.metrics.receiverDropped.Store(&dropped)
	kumaCNI := in.log.With("from", cni.PluginType)
	wg.Go(func() {
		err := r.Serve(relay.Handler{
			Log: func(fields map[string]any) { relayLog(kumaCNI, fields) },
			Outcome: func(o relay.Outcome) {
				in.metrics.outcome(o)
				if rep != nil {
					rep.Outcome(ctx, o)
				}
			},
		})
		if err != nil {
			in.log.Warn("kuma-cni's socket: " + err.Error())
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		_ = r.Close()
	})
}

// relayLog logs one of kuma-cni's records as install-cni's own, at its level, with its
// attributes; its time is install-cni's, microseconds later.
func relayLog(log *slog.Logger, fields map[string]any) {
	level := slog.LevelInfo
	if s, ok := fields[slog.LevelKey].(string); ok {
		_ = level.UnmarshalText([]byte(s))
	}
	msg, _ := fields[slog.MessageKey].(string)
	attrs := make([]any, 0, 2*len(fields))
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != slog.LevelKey && k != slog.MessageKey && k != slog.TimeKey {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		attrs = append(attrs, k, fields[k])
	}
	log.Log(context.Background(), level, msg, attrs...)
}

// startRepair starts repairing the node's pods, when enabled and the node is known.
func (in *Installer) startRepair(ctx context.Context, wg *sync.WaitGroup) *repair.Repairer {
	if !in.cfg.RepairEnabled {
		return nil
	}
	if in.cfg.NodeName == "" {
		in.log.Warn("the repair of pods is on, but NODE_NAME is not set, so it cannot know this node's pods; set NODE_NAME from spec.nodeName")
		return nil
	}
	c, err := in.clientset()
	if err != nil {
		in.log.Warn("the repair of pods cannot reach the API server: " + err.Error())
		return nil
	}
	rep := repair.New(c, in.cfg.NodeName, in.log.With("component", "repair"))
	rep.Counted = func(action, reason string) { in.metrics.repairs.WithLabelValues(action, reason).Inc() }
	wg.Go(func() {
		if err := rep.Run(ctx); err != nil {
			in.log.Warn("the repair of pods stopped: " + err.Error())
		}
	})
	return rep
}

// schedule runs one pass at the earliest time asked for.
type schedule struct {
	timer   *time.Timer
	pending bool
	due     time.Time
}

// newSchedule starts with a pass at once.
func newSchedule() *schedule {
	return &schedule{timer: time.NewTimer(0), pending: true, due: time.Now()}
}

func (s *schedule) after(d time.Duration) {
	due := time.Now().Add(d)
	if s.pending && !s.due.After(due) {
		return
	}
	s.timer.Reset(d)
	s.pending, s.due = true, due
}
