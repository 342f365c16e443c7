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
	run := func(ctx context.Context, ch *check, due time.Time) bool {
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
		return true
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
		func(ctx context.Context, _ *check, _ time.Time) bool {
			runs <- struct{}{}
			<-ctx.Done() // a probe that only Stop ends
			return false
		})
	<-runs
	cancel()
	s.wait()
	if len(runs) != 0 {
		t.Fatal("the check ran again after a run was cut short")
	}
}
