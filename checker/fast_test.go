package checker

import (
	"sync"
	"testing"
	"time"
)

// probeLog pairs when each probe of one check was due with its result;
// a check never overlaps itself, so the two come in turn.
type probeLog struct {
	mu     sync.Mutex
	dues   []time.Time
	oks    []bool
	onDone func(ok bool) // called with each result, in the probing goroutine
}

func (l *probeLog) options() Options {
	return Options{
		onProbe: func(_ string, due, _ time.Time) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.dues = append(l.dues, due)
		},
		OnResult: func(_ string, r Result) {
			l.mu.Lock()
			l.oks = append(l.oks, r.OK)
			fn := l.onDone
			l.mu.Unlock()
			if fn != nil {
				fn(r.OK)
			}
		},
	}
}

// since returns the dues and results of the probes from the i-th on.
func (l *probeLog) since(i int) ([]time.Time, []bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.oks)
	return append([]time.Time(nil), l.dues[i:n]...), append([]bool(nil), l.oks[i:n]...)
}

func (l *probeLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.oks)
}

// fast_interval: after a result that differs from the check's health, the
// next probes come at the fast interval until the threshold decides (both
// ways) or the streak breaks; then the check is back on its interval's
// grid. The due times are the scheduler's, so they are exact; the test
// waits on state with deadlines and asserts no duration.
func TestFastIntervalWhileAStreakDecides(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	const interval, fast = time.Second, 100 * time.Millisecond
	s := Spec{Name: "web", Kind: HTTP, Address: srv.addr(), Interval: interval, FastInterval: fast,
		ConnectTimeout: 500 * time.Millisecond, ResponseTimeout: 500 * time.Millisecond, FailureThreshold: 3}
	log := &probeLog{}
	c := started(t, []Spec{s}, log.options())
	if !c.Healthy("web") {
		t.Fatal("unhealthy at start")
	}

	// checkStreak looks at the probes from the i-th on: a first result
	// unlike the health (on the interval's grid), then the rest of the
	// streak each due at the fast interval after the one before (or on the
	// interval's grid, when a loaded machine made that sooner), then, once
	// the streak is over, a probe back on the interval's grid.
	checkStreak := func(what string, i, streak int) {
		t.Helper()
		eventually(t, 10*time.Second, func() bool { return log.len() >= i+streak+1 }, "%s: the probe after the streak", what)
		dues, _ := log.since(i)
		grid := func(d time.Time) bool { return d.Sub(dues[0])%interval == 0 }
		hurried := 0
		for k := 1; k < streak; k++ {
			if grid(dues[k]) {
				continue
			}
			hurried++
			if gap := dues[k].Sub(dues[k-1]); gap%fast != 0 {
				t.Errorf("%s: probe %d of the streak due %s after the one before, not on the fast grid", what, k+1, gap)
			}
		}
		if streak > 1 && hurried == 0 {
			t.Errorf("%s: no probe of the streak came at the fast interval", what)
		}
		if !grid(dues[streak]) {
			t.Errorf("%s: the probe after the streak is due %s after its start, off the interval's grid", what, dues[streak].Sub(dues[0]))
		}
	}

	// Failover: three failures decide, at the fast interval after the first.
	srv.set(503, "")
	from := log.len()
	eventually(t, 10*time.Second, func() bool { return !c.Healthy("web") }, "unhealthy")
	_, oks := log.since(from)
	first := from
	for k, ok := range oks {
		if !ok {
			first = from + k
			break
		}
	}
	checkStreak("failover", first, 3)

	// Failback: the same, three successes.
	srv.set(200, "")
	from = log.len()
	eventually(t, 10*time.Second, func() bool { return c.Healthy("web") }, "healthy again")
	_, oks = log.since(from)
	first = from
	for k, ok := range oks {
		if ok {
			first = from + k
			break
		}
	}
	checkStreak("failback", first, 3)

	// A streak that breaks: one failure, healed before the next probe,
	// which comes at the fast interval and ends the hurry.
	broken := make(chan int, 1)
	log.mu.Lock()
	log.onDone = func(ok bool) {
		if !ok {
			srv.set(200, "")
			select {
			case broken <- log.len() - 1:
			default:
			}
		}
	}
	log.mu.Unlock()
	srv.set(503, "")
	var at int
	select {
	case at = <-broken:
	case <-time.After(10 * time.Second):
		t.Fatal("no failing probe within 10s")
	}
	checkStreak("broken streak", at, 2)
	if !c.Healthy("web") {
		t.Error("one failure of three turned the check unhealthy")
	}
}
