package checker

import (
	"context"
	"sync"
	"testing"
	"time"
)

// The scheduler alone, with a run function standing in for probes: each
// check runs on its own grid, never overlapping itself, its next due time
// published, until the context ends.
func TestSchedulerRunsEachCheckOnItsGrid(t *testing.T) {
	const interval = 20 * time.Millisecond // no probe behind it: the scheduler has no minimum
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	checks := []*check{{}, {}, {}}
	anchor := time.Now()
	var plans []plan
	for i, ch := range checks {
		plans = append(plans, plan{check: ch, interval: interval, first: time.Duration(i) * time.Millisecond,
			anchor: anchor, next: &ch.next})
	}

	var mu sync.Mutex
	running := map[*check]bool{}
	dues := map[*check][]time.Time{}
	run := func(ctx context.Context, ch *check, due time.Time) pace {
		mu.Lock()
		if running[ch] {
			t.Error("a check overlaps itself")
		}
		running[ch] = true
		dues[ch] = append(dues[ch], due)
		mu.Unlock()
		time.Sleep(time.Millisecond) // a probe takes a while
		mu.Lock()
		running[ch] = false
		mu.Unlock()
		return steady
	}
	s := startScheduler(ctx, time.Now(), plans, run)
	eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range checks {
			if len(dues[ch]) < 4 {
				return false
			}
		}
		return true
	}, "four runs of each check")
	cancel()
	s.wait()

	mu.Lock()
	defer mu.Unlock()
	for i, ch := range checks {
		for _, due := range dues[ch][1:] {
			if off := due.Sub(anchor) % interval; off != 0 {
				t.Errorf("check %d due %s off its grid", i, off)
			}
		}
		if next := time.Unix(0, ch.next.Load()); !next.After(dues[ch][len(dues[ch])-1]) {
			t.Errorf("check %d: next due %s not published after its last run", i, next)
		}
	}
	if n := countRunning(); n != 0 {
		t.Fatalf("%d scheduling goroutines after wait", n)
	}
}

// A run cut short by the context is no result: the check is not put back.
func TestSchedulerStopsOnCutShortRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := &check{}
	runs := make(chan struct{}, 10)
	s := startScheduler(ctx, time.Now(), []plan{{check: ch, interval: time.Hour, anchor: time.Now(), next: &ch.next}},
		func(ctx context.Context, _ *check, _ time.Time) pace {
			runs <- struct{}{}
			<-ctx.Done() // a probe that only Stop ends
			return cutShort
		})
	<-runs
	cancel()
	s.wait()
	if len(runs) != 0 {
		t.Fatal("the check ran again after a run was cut short")
	}
}

// A hurried run brings the check back fast apart from its due time, on a
// grid of its own; the first steady run after puts it back on the grid of
// its interval, in its old phase. The due times are what the scheduler
// computed, not clock readings, so they are exact.
func TestSchedulerHurriesOnTheFastGrid(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		fast     = 20 * time.Millisecond
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := &check{}
	anchor := time.Now()
	// Runs 2-4 say hurried, the others steady.
	paces := []pace{steady, hurried, hurried, hurried, steady, steady}
	var mu sync.Mutex
	var dues []time.Time
	done := make(chan struct{})
	run := func(ctx context.Context, _ *check, due time.Time) pace {
		mu.Lock()
		defer mu.Unlock()
		dues = append(dues, due)
		if len(dues) == len(paces) {
			close(done)
		}
		if len(dues) > len(paces) {
			return steady
		}
		return paces[len(dues)-1]
	}
	s := startScheduler(ctx, time.Now(), []plan{{check: ch, interval: interval, fast: fast, anchor: anchor, next: &ch.next}}, run)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not six runs within 10s")
	}
	cancel()
	s.wait()

	mu.Lock()
	defer mu.Unlock()
	onGrid := func(d time.Time) bool { return d.Sub(anchor)%interval == 0 }
	if !onGrid(dues[1]) {
		t.Errorf("run 2 due %s off the interval grid", dues[1].Sub(anchor))
	}
	hurriedOffGrid := 0
	for i := 2; i <= 4; i++ {
		// The run before was hurried: this one is on its fast grid, or on
		// the interval grid when that came sooner (a loaded machine can
		// make the scheduler late by more than an interval).
		if onGrid(dues[i]) {
			continue
		}
		hurriedOffGrid++
		if gap := dues[i].Sub(dues[i-1]); gap%fast != 0 {
			t.Errorf("run %d due %s after run %d, not a multiple of the fast interval %s", i+1, gap, i, fast)
		}
	}
	if hurriedOffGrid == 0 {
		t.Error("no run after a hurried one came at the fast interval")
	}
	// Run 5 was steady: run 6 is back on the interval grid.
	if !onGrid(dues[5]) {
		t.Errorf("run 6 due %s off the interval grid after a steady run", dues[5].Sub(anchor))
	}
}
