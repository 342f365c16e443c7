package checker

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"
)

// firstProbeSpread bounds how long after Start a new check first probes.
const firstProbeSpread = 250 * time.Millisecond

// workerIdle is how long a worker goroutine may wait for work before it
// is retired.
const workerIdle = 5 * time.Second

// scheduler holds the checks waiting for their next probe, soonest first.
// One goroutine sleeps until the soonest is due and hands each due probe to
// an idle worker goroutine, or starts a new one when none is idle; the
// probe puts its check back when it is done, so a check never overlaps
// itself. An idle check costs a queue slot, not a goroutine and its stack,
// so ten thousand checks stay cheap; and a probe stuck on a silent backend
// holds up nothing but its own check.
//
// Idle workers are reused last in, first out: the few that a steady load
// needs stay busy, their stacks already grown, and the surplus of a burst,
// such as the first probes of every check, sinks to the bottom of the
// stack and is retired.
type scheduler struct {
	mu    sync.Mutex
	queue queue
	idle  []*worker // most recently idle last
	// wake tells the loop that the soonest due time moved earlier.
	wake chan struct{}
}

// slot is a check's place in the schedule: its next due time, on the
// fixed-rate grid through anchor, one interval apart.
type slot struct {
	check  *check
	due    time.Time
	anchor time.Time
}

// worker is a goroutine that probes what it is handed; nil retires it.
type worker struct {
	work      chan *slot // capacity 1: handing over never blocks
	idleSince time.Time
}

// schedule queues the planned checks and starts the loop. c.life is held.
func (c *Checker) schedule(plans []plan) {
	now := time.Now()
	c.sched.wake = make(chan struct{}, 1)
	for _, p := range plans {
		s := &slot{check: p.check, due: now.Add(p.first), anchor: p.anchor}
		p.check.next.Store(s.due.UnixNano())
		heap.Push(&c.sched.queue, s)
	}
	c.wg.Add(1)
	go c.loop()
}

// loop starts every probe that is due, then sleeps until the next one is,
// until Stop.
func (c *Checker) loop() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*slot
	for {
		now := time.Now()
		wait := workerIdle // at the latest, wake to retire idle workers
		c.sched.mu.Lock()
		for len(c.sched.queue) > 0 {
			if next := c.sched.queue[0].due; next.After(now) {
				wait = min(wait, next.Sub(now))
				break
			}
			due = append(due, heap.Pop(&c.sched.queue).(*slot))
		}
		c.sched.mu.Unlock()
		for i, s := range due {
			c.dispatch(s)
			due[i] = nil
		}
		due = due[:0]
		c.retire(now)

		timer.Reset(wait)
		select {
		case <-c.ctx.Done():
			return
		case <-timer.C:
		case <-c.sched.wake:
		}
	}
}

// dispatch hands s to the most recently idle worker, or to a new one.
func (c *Checker) dispatch(s *slot) {
	c.sched.mu.Lock()
	if n := len(c.sched.idle); n > 0 {
		w := c.sched.idle[n-1]
		c.sched.idle[n-1] = nil
		c.sched.idle = c.sched.idle[:n-1]
		c.sched.mu.Unlock()
		w.work <- s
		return
	}
	c.sched.mu.Unlock()
	c.wg.Add(1)
	go c.work(s)
}

// retire stops the workers that have been idle for longer than workerIdle:
// those at the bottom of the stack.
func (c *Checker) retire(now time.Time) {
	c.sched.mu.Lock()
	defer c.sched.mu.Unlock()
	idle := c.sched.idle
	n := 0
	for n < len(idle) && now.Sub(idle[n].idleSince) > workerIdle {
		idle[n].work <- nil
		n++
	}
	if n > 0 {
		c.sched.idle = append(idle[:0], idle[n:]...)
		clear(idle[len(c.sched.idle):])
	}
}

// work probes s, then whatever it is handed, until it is retired or Stop.
func (c *Checker) work(s *slot) {
	defer c.wg.Done()
	w := &worker{work: make(chan *slot, 1)}
	for s != nil {
		if !c.probe(s) {
			return
		}
		c.sched.mu.Lock()
		w.idleSince = time.Now()
		c.sched.idle = append(c.sched.idle, w)
		c.sched.mu.Unlock()
		select {
		case s = <-w.work:
		case <-c.ctx.Done():
			return
		}
	}
}

// probe runs one probe of a check, records it and puts the check back in
// the schedule at the next tick of its grid after now: when a probe
// overruns, the ticks it missed are skipped, not caught up. It returns
// false when Stop cut the probe short.
func (c *Checker) probe(s *slot) bool {
	ch := s.check
	if c.opts.onProbe != nil {
		c.opts.onProbe(ch.spec.Name, s.due, time.Now())
	}
	r := ch.probe(c.ctx)
	if c.ctx.Err() != nil {
		return false // cut short by Stop: not a result
	}
	c.record(ch, r)
	if c.opts.OnResult != nil {
		c.opts.OnResult(ch.spec.Name, r)
	}
	s.due = nextTick(s.anchor, ch.spec.Interval, time.Now())
	ch.next.Store(s.due.UnixNano())

	c.sched.mu.Lock()
	heap.Push(&c.sched.queue, s)
	soonest := c.sched.queue[0] == s
	c.sched.mu.Unlock()
	if soonest {
		select {
		case c.sched.wake <- struct{}{}:
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
