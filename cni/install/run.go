package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// settle is how long a burst of changes (a provider writing in place, our own writes) is let
	// finish before one pass acts on all of it: short against the one second heal budget.
	settle = 50 * time.Millisecond
	// retry is when a pass that failed is tried again, changes or not.
	retry = time.Second
)

// Run installs kuma-cni, serves /ready on the configured address and keeps kuma-cni installed
// until ctx ends; then it uninstalls it and returns what went wrong doing that.
func (in *Installer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", in.cfg.ReadyAddr)
	if err != nil {
		return fmt.Errorf("READY_ADDR: %w", err)
	}
	srv := &http.Server{Handler: in, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	for _, dir := range []string{in.cfg.MountedNetDir, in.cfg.MountedBinDir, in.cfg.ServiceAccountDir} {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watching %s: %w", dir, err)
		}
	}
	in.log.Info("starting", "chained", in.cfg.Chained, "netDir", in.cfg.NetDir, "mountedNetDir", in.cfg.MountedNetDir,
		"binDir", in.cfg.BinDir, "mountedBinDir", in.cfg.MountedBinDir, "confName", in.cfg.ConfName, "ready", ln.Addr().String())
	// A predecessor killed mid-write left its temporary files; a write of ours cannot be under
	// way yet.
	if err := in.removeTemporaries(); err != nil {
		in.log.Warn(err.Error())
	}

	s := newSchedule()
	for {
		select {
		case <-ctx.Done():
			in.setNotReady(slog.LevelInfo, "shutting down")
			return in.uninstall()
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
		case <-s.timer.C:
			s.pending = false
			if err := in.install(); err != nil {
				in.setNotReady(slog.LevelWarn, err.Error()+"; retrying")
				s.after(retry)
			}
			in.passes.Add(1)
		}
	}
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
