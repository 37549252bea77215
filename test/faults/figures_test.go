// Package faults puts the node-level pieces through the faults a node sees: the xtables lock held by
// another process, the CNI network configuration rewritten over and over, install-cni killed
// without warning, and the API server restarted under the taint controller and kuma-cni. Each
// test checks the outcome and logs the figures (latencies, recovery times) it measured, for
// docs/reliability.md; none asserts a duration.
package faults

import (
	"fmt"
	"slices"
	"time"
)

// distribution is p50, p99 and max of a sample, for the log.
func distribution(sample []time.Duration) string {
	s := slices.Sorted(slices.Values(sample))
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", len(s), ms(at(0.5)), ms(at(0.99)), ms(s[len(s)-1]))
}
