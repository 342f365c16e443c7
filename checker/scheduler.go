package checker

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// firstProbeSpread bounds how long after Start a new check first probes.
const firstProbeSpread = 250 * time.Millisecond

// workerIdle is how long a worker goroutine may wait for work before it
// is retired.
const workerIdle = 5 * time.Second

// scheduler runs each check's probes on time, one at a time per check. It
// knows nothing of probes, results or health: it is handed a run function
// that probes a check and records the result, and calls it whenever the
// check is due; the run says at which pace the check goes on.
//
// It holds the checks waiting for their next probe, soonest first. One
// goroutine sleeps until the soonest is due and hands each due check to an
// idle worker goroutine, or starts a new one when none is idle; the worker
// puts the check back when its probe is done, so a check never overlaps
// itself. An idle check costs a queue slot, not a goroutine and its stack,
// so ten thousand checks stay cheap; and a probe stuck on a silent backend
// holds up nothing but its own check.
//
// Idle workers are reused last in, first out: the few that a steady load
// needs stay busy, their stacks already grown, and the surplus of a burst,
// such as the first probes of every check, sinks to the bottom of the
// stack and is retired.
type scheduler struct {
	// run probes ch and records the result; it returns cutShort when ctx
	// ended the probe early, which is then no result. due is when the
	// probe was due.
	run func(ctx context.Context, ch *check, due time.Time) pace
	ctx context.Context
	wg  sync.WaitGroup

	mu    sync.Mutex
	queue queue
	idle  []*worker // most recently idle last
	// wake tells the loop that the soonest due time moved earlier.
	wake chan struct{}
}

// pace is how a check goes on after a run.
type pace int

const (
	cutShort pace = iota // the context ended the run: no result, and no next run
	steady               // the next run on the grid of the check's interval
	hurried              // a streak is deciding: the next run at the fast interval
)

// plan is how a check's probing begins: the first probe after first, then
// on a fixed grid through anchor, interval apart; while its runs are
// hurried, fast apart (when fast is not zero).
type plan struct {
	check    *check // handed to run, never looked into
	interval time.Duration
	fast     time.Duration
	first    time.Duration
	anchor   time.Time
	// next is where each next due time is published (UnixNano), so that
	// the next configuration can carry on with the same phase.
	next *atomic.Int64
}

// slot is a check's place in the schedule: its next due time, on the
// fixed-rate grid of its plan.
type slot struct {
	plan
	due time.Time
}

// worker is a goroutine that probes what it is handed; nil retires it.
type worker struct {
	work      chan *slot // capacity 1: handing over never blocks
	idleSince time.Time
}

// startScheduler queues the planned checks, their first probes counted
// from now, and starts probing them until ctx is done.
func startScheduler(ctx context.Context, now time.Time, plans []plan, run func(context.Context, *check, time.Time) pace) *scheduler {
	s := &scheduler{run: run, ctx: ctx, wake: make(chan struct{}, 1)}
	for _, p := range plans {
		sl := &slot{plan: p, due: now.Add(p.first)}
		sl.next.Store(sl.due.UnixNano())
		heap.Push(&s.queue, sl)
	}
	s.wg.Add(1)
	go s.loop()
	return s
}

// wait returns once every goroutine of the scheduler has exited, which
// they do when its context is done.
func (s *scheduler) wait() { s.wg.Wait() }

// loop starts every probe that is due, then sleeps until the next one is,
// until the context is done.
func (s *scheduler) loop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*slot
	for {
		now := time.Now()
		wait := workerIdle // at the latest, wake to retire idle workers
		s.mu.Lock()
		for len(s.queue) > 0 {
			if next := s.queue[0].due; next.After(now) {
				wait = min(wait, next.Sub(now))
				break
			}
			due = append(due, heap.Pop(&s.queue).(*slot))
		}
		s.mu.Unlock()
		for i, sl := range due {
			s.dispatch(sl)
			due[i] = nil
		}
		due = due[:0]
		s.retire(now)

		timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// dispatch hands sl to the most recently idle worker, or to a new one.
func (s *scheduler) dispatch(sl *slot) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		w := s.idle[n-1]
		s.idle[n-1] = nil
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		w.work <- sl
		return
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go s.work(sl)
}

// retire stops the workers that have been idle for longer than workerIdle:
// those at the bottom of the stack.
func (s *scheduler) retire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idle := s.idle
	n := 0
	for n < len(idle) && now.Sub(idle[n].idleSince) > workerIdle {
		idle[n].work <- nil
		n++
	}
	if n > 0 {
		s.idle = append(idle[:0], idle[n:]...)
		clear(idle[len(s.idle):])
	}
}

// work probes sl, then whatever it is handed, until it is retired or the
// context is done.
func (s *scheduler) work(sl *slot) {
	defer s.wg.Done()
	w := &worker{work: make(chan *slot, 1)}
	for sl != nil {
		if !s.probe(sl) {
			return
		}
		s.mu.Lock()
		w.idleSince = time.Now()
		s.idle = append(s.idle, w)
		s.mu.Unlock()
		select {
		case sl = <-w.work:
		case <-s.ctx.Done():
			return
		}
	}
}

// probe runs one probe of a check and puts the check back in the schedule
// at the next tick of its grid after now: when a probe overruns, the ticks
// it missed are skipped, not caught up. A hurried check comes back at the
// next tick of a grid fast apart from this probe's due time instead, or
// of its own grid if that is sooner; once the runs are steady again, the
// check is back on its own grid, in its own phase. It returns false when
// the context cut the probe short.
func (s *scheduler) probe(sl *slot) bool {
	p := s.run(s.ctx, sl.check, sl.due)
	if p == cutShort {
		return false
	}
	now := time.Now()
	next := nextTick(sl.anchor, sl.interval, now)
	if p == hurried && sl.fast > 0 {
		if fast := nextTick(sl.due, sl.fast, now); fast.Before(next) {
			next = fast
		}
	}
	sl.due = next
	sl.next.Store(sl.due.UnixNano())

	s.mu.Lock()
	heap.Push(&s.queue, sl)
	soonest := s.queue[0] == sl
	s.mu.Unlock()
	if soonest {
		select {
		case s.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return true
}

// nextTick returns the first instant after t on the grid anchor + k×interval.
func nextTick(anchor time.Time, interval time.Duration, t time.Time) time.Time {
	d := t.Sub(anchor)
	k := d / interval
	if d < 0 && d%interval != 0 {
		k-- // round towards minus infinity
	}
	next := anchor.Add(k * interval)
	for !next.After(t) {
		next = next.Add(interval)
	}
	return next
}

// randDuration returns a random duration in [0, d).
func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// queue is a min-heap of slots by due time.
type queue []*slot

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(*slot)) }

func (q *queue) Pop() any {
	old := *q
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return s
}
