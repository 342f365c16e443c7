package checker

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkStartUnreachable measures what Start costs when the targets of
// its new checks do not answer, with the default timeouts (connect 4 s,
// response 2 s): Start waits for each first probe, bounded by the check's
// own timeouts after the first-probe spread. It reports how long Start
// took, that bound, and how many checks had a result when it returned.
// Each run takes seconds; run it once:
//
//	go test -run '^$' -bench StartUnreachable -benchtime 1x ./checker/
//
// The targets are on loopback: a port nothing listens on (refused at once,
// for comparison), a listener whose queue is full (the connect times out),
// and one that accepts and never answers (the response times out).
func BenchmarkStartUnreachable(b *testing.B) {
	targets := []struct {
		name string
		kind Kind
		addr func(testing.TB) string
	}{
		{"refused", TCP, closedAddr},
		{"never-accepts", TCP, fullBacklogAddr},
		{"accepts-never-answers", HTTP, silentAddr},
	}
	for _, target := range targets {
		for _, n := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/checks=%d", target.name, n), func(b *testing.B) {
				addr := target.addr(b)
				specs := make([]Spec, n)
				for i := range specs {
					specs[i] = Spec{Name: fmt.Sprintf("c%04d", i), Kind: target.kind, Address: addr}
				}
				var took time.Duration
				checked := 0
				for range b.N {
					c, err := New(specs, Options{})
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					c.Start(nil)
					took += time.Since(start)
					for _, st := range c.Snapshot() {
						if st.Checked {
							checked++
						}
					}
					c.Stop()
				}
				bound := firstProbeSpread + probeTimeouts(specs[0].WithDefaults()) + firstResultGrace
				b.ReportMetric(took.Seconds()/float64(b.N), "start-s")
				b.ReportMetric(bound.Seconds(), "bound-s")
				b.ReportMetric(100*float64(checked)/float64(n*b.N), "checked-%")
			})
		}
	}
}
