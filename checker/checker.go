package checker

import (
	"context"
	"crypto/x509"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Checker.
type Options struct {
	// OnResult is called after every finished probe of a check that probes
	// (neither calculated nor disabled), from the probing goroutine, with the
	// result after invert. It is there for metrics and must be fast.
	OnResult func(check string, r Result)

	// Probes, when set, is asked before every probe whether this member
	// should probe the check now (a cluster shares the probing). A check
	// that is skipped has no result of its own until it is probed again,
	// and its next probe decides its health directly, like a first one.
	Probes func(check string) bool

	// External makes a Checker that probes nothing: the health of each
	// check that would probe is decided from outside with Set (by the
	// cluster's agreement), and calculated checks follow it.
	External bool

	// Hooks for tests: roots replaces the system's certificate roots, and
	// onProbe sees when each probe was due and when it began.
	roots   *x509.CertPool
	onProbe func(check string, due, began time.Time)
}

// Checker probes a fixed set of checks in the background and keeps their
// state. A configuration gets a new Checker; Start hands over the state of
// the checks that did not change from the previous one.
//
// A check that is new (not inherited) is probed at once, and Start waits
// for that first probe; it decides the check's health directly, without
// thresholds: a dead primary is known after one probe, not after
// threshold×interval, and a live one is not reported down before it was
// ever probed. After that the failure and success thresholds apply. An
// inherited check carries on with its thresholds and counters.
type Checker struct {
	opts   Options
	specs  []Spec
	checks []*check          // in definition order
	byName map[string]*check // read-only after New
	sorted []*check          // by name, for Snapshot
	calcs  []*check          // calculated checks, children before parents

	// mu guards every check's state and pending. Readers (DNS status
	// pages, the Healthy fast path excepted) take it shared.
	mu      sync.RWMutex
	pending []Transition

	// emitMu serialises delivery to subscribers, so that transitions reach
	// them in the order they were decided, without holding mu: a
	// subscriber may read State or Snapshot.
	emitMu      sync.Mutex
	subscribers []func(Transition)

	life    sync.Mutex
	started bool
	stopped bool
	ctx     context.Context
	cancel  context.CancelFunc
	sched   *scheduler // nil until Start, and without checks that probe

	buffers *buffers
}

// check is one check's definition, wiring and state.
type check struct {
	spec  Spec
	state State // guarded by Checker.mu
	// healthy mirrors state.Healthy so that Healthy needs no lock on the
	// query path.
	healthy atomic.Bool
	probe   func(context.Context) Result // nil when the check does not probe

	children  []*check
	ancestors []*check // calculated checks that depend on this one, children first
	topo      int      // position in Checker.calcs

	// next is when the next probe is due (UnixNano), so that the next
	// configuration can carry on with the same phase.
	next atomic.Int64
	// firstResult, set by Start for a new check, is closed once its first
	// probe is recorded. Only the goroutine probing the check touches it
	// after Start, and a check never overlaps itself.
	firstResult chan struct{}
}

// New validates specs, with defaults applied, and prepares a Checker. It
// starts nothing: CoreDNS calls it during setup, whose result may be
// thrown away if another plugin's setup fails.
func New(specs []Spec, opts Options) (*Checker, error) {
	c := &Checker{opts: opts, byName: make(map[string]*check, len(specs)), buffers: newBuffers()}
	for _, s := range specs {
		s = s.WithDefaults()
		s.Children = slices.Clone(s.Children)
		s.Headers, s.Expect = slices.Clone(s.Headers), slices.Clone(s.Expect)
		c.specs = append(c.specs, s)
	}
	if err := Validate(c.specs); err != nil {
		return nil, err
	}

	now := time.Now()
	for _, s := range c.specs {
		ch := &check{spec: s, state: State{Name: s.Name, Kind: s.Kind, Healthy: true, Probed: true, Since: now}}
		switch {
		case s.Disable:
			ch.state.Checked = true
			ch.state.Last = Result{OK: true, Reason: ReasonDisabled, Message: "disabled", At: now}
		case s.Kind != Calculated && !opts.External:
			probe, err := newProbe(s, opts, c.buffers)
			if err != nil {
				return nil, err
			}
			ch.probe = probe
		}
		ch.healthy.Store(true)
		c.checks = append(c.checks, ch)
		c.byName[s.Name] = ch
	}
	c.sorted = slices.Clone(c.checks)
	sort.Slice(c.sorted, func(i, j int) bool { return c.sorted[i].spec.Name < c.sorted[j].spec.Name })
	c.wireCalculated()
	for _, calc := range c.calcs {
		c.evaluate(calc, now)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Subscribe registers fn to be told of every change of health of any check,
// calculated ones included; call it before Start. fn is called
// synchronously, in order for each check, a calculated check's transition
// after the one of the child that caused it. It must be fast, may read the
// Checker, and must not call Stop.
func (c *Checker) Subscribe(fn func(Transition)) {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	c.subscribers = append(c.subscribers, fn)
}

// Start starts probing and returns once every new check has its first
// result, so that nothing is answered from a health nobody has looked at.
// A probe that hangs holds Start up for at most the check's own timeouts
// after its first-probe spread; a disabled or calculated check needs no
// probe of its own, and an inherited one brings its health along.
//
// prev, the previous configuration's Checker (nil for none), keeps running
// until its own Stop; every check whose Spec equals one of prev's takes
// over its state, so that a reload loses no health. A check whose inherited
// health differs from the initial healthy is published as a transition
// before Start returns, so subscribers that built their view from Healthy
// after New see the inherited health. A second Start, or a Start after
// Stop, does nothing; a Stop during Start ends the wait.
func (c *Checker) Start(prev *Checker) {
	c.life.Lock()
	if c.started || c.stopped {
		c.life.Unlock()
		return
	}
	c.started = true
	now := time.Now()
	plans, fresh := c.inherit(prev, now)
	c.flush()
	firsts := make([]firstResult, 0, len(fresh))
	for _, p := range fresh {
		p.check.firstResult = make(chan struct{})
		by := now.Add(p.first + probeTimeouts(p.check.spec) + firstResultGrace)
		firsts = append(firsts, firstResult{done: p.check.firstResult, by: by})
	}
	if len(plans) > 0 {
		c.sched = startScheduler(c.ctx, now, plans, c.probeAndRecord)
	}
	c.life.Unlock()
	c.awaitFirstResults(firsts)
}

// firstResultGrace is how long after its probe's own timeouts Start still
// waits for a first result: a probe that times out returns at its
// deadline, and its result deserves to be recorded rather than raced.
const firstResultGrace = 100 * time.Millisecond

// probeTimeouts is the longest a probe of s may take: its timeouts.
func probeTimeouts(s Spec) time.Duration {
	return s.ConnectTimeout + s.ResponseTimeout // zero for tcp
}

// firstResult is one new check's first probe that Start waits for.
type firstResult struct {
	done chan struct{}
	by   time.Time // Start waits no longer
}

// awaitFirstResults waits until every first probe has been recorded or is
// past its own deadline, or until Stop.
func (c *Checker) awaitFirstResults(firsts []firstResult) {
	slices.SortFunc(firsts, func(a, b firstResult) int { return a.by.Compare(b.by) })
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for _, f := range firsts {
		wait := time.Until(f.by)
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-f.done:
		case <-timer.C:
		case <-c.ctx.Done():
			return
		}
	}
}

// probeAndRecord runs one probe of ch and records its result; cutShort
// when Stop cut the probe short, hurried while a streak of results that
// differ from the check's health is under way (for fast_interval). It is
// what the scheduler runs.
func (c *Checker) probeAndRecord(ctx context.Context, ch *check, due time.Time) pace {
	if c.opts.onProbe != nil {
		c.opts.onProbe(ch.spec.Name, due, time.Now())
	}
	if c.opts.Probes != nil && !c.opts.Probes(ch.spec.Name) {
		c.skip(ch)
		return steady
	}
	r := ch.probe(ctx)
	if ctx.Err() != nil {
		return cutShort // not a result
	}
	deciding := c.record(ch, r)
	if c.opts.OnResult != nil {
		c.opts.OnResult(ch.spec.Name, r)
	}
	ch.firstDone()
	if deciding {
		return hurried
	}
	return steady
}

// skip leaves out a probe this member need not make: the check forgets
// that it was checked, so that its next probe, maybe much later, decides
// its health directly instead of adding to counts of long ago.
func (c *Checker) skip(ch *check) {
	c.mu.Lock()
	ch.state.Checked = false
	c.mu.Unlock()
	ch.firstDone()
}

// firstDone tells Start that the check's first probe is over (or skipped).
func (ch *check) firstDone() {
	if ch.firstResult != nil {
		close(ch.firstResult)
		ch.firstResult = nil
	}
}

// Stop stops probing and returns once every goroutine the Checker started
// has exited; probes in flight are cut short. It may be called more than
// once, concurrently, during Start and without Start.
func (c *Checker) Stop() {
	c.life.Lock()
	c.stopped = true
	c.cancel()
	sched := c.sched
	c.life.Unlock()
	if sched != nil {
		sched.wait()
	}
}

// Ready reports whether every check has a result: its first probe has
// finished, or, for a calculated check, the first probe of every child.
func (c *Checker) Ready() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, ch := range c.checks {
		if !ch.state.Checked {
			return false
		}
	}
	return true
}

// Healthy reports whether the named check is healthy; false for a name it
// does not know. It takes no lock: it is on the query path.
func (c *Checker) Healthy(name string) bool {
	ch, ok := c.byName[name]
	return ok && ch.healthy.Load()
}

// State returns a copy of the named check's state.
func (c *Checker) State(name string) (State, bool) {
	ch, ok := c.byName[name]
	if !ok {
		return State{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return ch.state, true
}

// Snapshot returns a consistent copy of every check's state, sorted by name.
func (c *Checker) Snapshot() []State {
	out := make([]State, len(c.sorted))
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, ch := range c.sorted {
		out[i] = ch.state
	}
	return out
}

// Specs returns the checks' definitions, with defaults applied, in the
// order they were given.
func (c *Checker) Specs() []Spec {
	out := make([]Spec, len(c.specs))
	for i, s := range c.specs {
		s.Children = slices.Clone(s.Children)
		s.Headers, s.Expect = slices.Clone(s.Headers), slices.Clone(s.Expect)
		out[i] = s
	}
	return out
}
