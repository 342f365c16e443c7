package healthfailover

import (
	"sync"
	"time"

	"github.com/healthfailover/healthfailover/checker"
)

// historyLength is how many recent probe results the status page shows per
// check: enough to see a flap or a slow decline at a glance.
const historyLength = 40

// probeHistory keeps the last results of every check that probes, for the
// status page; the checker itself keeps only the last one. It is fed from
// the checker's OnResult callback, off the query path. Its map is built
// once and never changes, and each check has its own ring and lock, so
// that probes of different checks never wait for one another and a probe
// allocates nothing.
type probeHistory struct {
	byCheck map[string]*resultRing
}

type resultRing struct {
	mu    sync.Mutex
	marks [historyLength]resultMark
	next  int // where the next result goes
	full  bool
}

// resultMark is what the page shows of one probe: its colour and, on
// hover, when, why and how long.
type resultMark struct {
	OK      bool
	Reason  checker.Reason
	Message string
	At      time.Time
	Total   time.Duration
}

// newProbeHistory makes a ring for every check that may probe (neither
// calculated nor disabled).
func newProbeHistory(specs []checker.Spec) *probeHistory {
	ph := &probeHistory{byCheck: map[string]*resultRing{}}
	for _, s := range specs {
		if s.Kind != checker.Calculated && !s.Disable {
			ph.byCheck[s.Name] = &resultRing{}
		}
	}
	return ph
}

// record adds one probe's result; it is called from the probing goroutine.
func (ph *probeHistory) record(check string, r checker.Result) {
	if ph == nil {
		return
	}
	ring := ph.byCheck[check]
	if ring == nil {
		return
	}
	ring.mu.Lock()
	ring.marks[ring.next] = resultMark{OK: r.OK, Reason: r.Reason, Message: r.Message, At: r.At, Total: r.Phases.Total}
	ring.next++
	if ring.next == historyLength {
		ring.next, ring.full = 0, true
	}
	ring.mu.Unlock()
}

// recent returns a check's recorded results, oldest first.
func (ph *probeHistory) recent(check string) []resultMark {
	if ph == nil {
		return nil
	}
	ring := ph.byCheck[check]
	if ring == nil {
		return nil
	}
	ring.mu.Lock()
	defer ring.mu.Unlock()
	if !ring.full {
		return append([]resultMark(nil), ring.marks[:ring.next]...)
	}
	out := make([]resultMark, 0, historyLength)
	out = append(out, ring.marks[ring.next:]...)
	return append(out, ring.marks[:ring.next]...)
}
