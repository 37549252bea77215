package kubeenv

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/meshinit/meshinit/test/prereq"
)

// Shared is an environment the tests of a package share, since a control plane takes seconds to
// start: the first test that asks starts it, and the package's TestMain stops it through Main.
type Shared[E any] struct {
	// What names the environment to a test that cannot have it.
	What  string
	Start func() (E, error)
	Stop  func(E) error

	once    sync.Once
	env     E
	err     error
	started bool
}

// Get is the environment, started by the first call. A test that cannot have it fails under
// CI=true and is skipped elsewhere.
func (s *Shared[E]) Get(t testing.TB) E {
	t.Helper()
	s.once.Do(func() {
		s.env, s.err = s.Start()
		s.started = s.err == nil
	})
	if s.err != nil {
		prereq.Missing(t, "%s: %v", s.What, s.err)
	}
	return s.env
}

// Main runs the package's tests and then stops the environment, if it started; TestMain calls it.
func (s *Shared[E]) Main(m *testing.M) {
	code := m.Run()
	if s.started {
		if err := s.Stop(s.env); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}
