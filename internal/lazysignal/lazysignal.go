// Package lazysignal gives a short-lived program a context that ends on a signal, listening for
// the signal only from the moment something first waits on the context.
//
// os/signal's first Notify starts a goroutine and a thread locked to it, which costs about a
// quarter of a bare Go program's start (docs/benchmarks.md). kuma-init only waits when another
// install holds the namespace's lock, when it retries, when it runs a command or reads stdin; an
// install that never waits should not pay for hearing a SIGTERM it has no wait to cut short.
// Until then a signal has the runtime's default effect: the program exits at once.
package lazysignal

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"
)

// Context is a context.Context that ends when one of its signals arrives, once anything has
// asked for its Done channel or its values (context.AfterFunc, a derived context and a select on
// Done all do).
type Context struct {
	signals []os.Signal
	once    sync.Once
	started atomic.Bool // once has run: ctx and stop are set
	ctx     context.Context
	stop    context.CancelFunc
}

// New returns a Context for signals; Stop releases them.
func New(signals ...os.Signal) *Context {
	return &Context{signals: signals}
}

// listening starts listening for the signals the first time it is called.
func (c *Context) listening() context.Context {
	c.once.Do(func() {
		c.ctx, c.stop = signal.NotifyContext(context.Background(), c.signals...)
		c.started.Store(true)
	})
	return c.ctx
}

func (c *Context) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *Context) Done() <-chan struct{} { return c.listening().Done() }

// Err is nil until something has waited on c and a signal has arrived since (or Stop was called):
// a check of Err alone does not start listening, as no signal could have been heard before.
func (c *Context) Err() error {
	if !c.started.Load() {
		return nil
	}
	return c.ctx.Err()
}

func (c *Context) Value(key any) any { return c.listening().Value(key) }

// Stop stops listening, if c ever started to, and ends c, as signal.NotifyContext's stop does.
func (c *Context) Stop() {
	c.once.Do(func() {
		c.ctx, c.stop = context.WithCancel(context.Background())
		c.started.Store(true)
	})
	c.stop()
}
