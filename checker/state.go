package checker

import (
	"fmt"
	"time"
)

// record applies one probe result to a check, propagates to the calculated
// checks above it, and publishes what changed. It reports whether the
// result differs from the health the probes decided: a streak is under
// way that the thresholds have not decided yet.
func (c *Checker) record(ch *check, r Result) (deciding bool) {
	c.mu.Lock()
	wasChecked := ch.state.Checked
	changed := c.apply(ch, r)
	if changed || !wasChecked {
		c.propagate(ch, r.At)
	}
	deciding = r.OK != ch.state.Probed
	publish := len(c.pending) > 0
	c.mu.Unlock()
	if publish {
		c.flush()
	}
	return deciding
}

// Set decides the health of a check of an External Checker, with no
// thresholds: r is the decision (its OK the health, its Message why). A
// calculated or disabled check, or a name the Checker does not know, is
// left alone and false returned.
func (c *Checker) Set(name string, r Result) bool {
	ch, ok := c.byName[name]
	if !ok || ch.spec.Kind == Calculated || ch.spec.Disable {
		return false
	}
	c.mu.Lock()
	st := &ch.state
	wasChecked := st.Checked
	st.Last = r
	st.Checked = true
	st.Probed = r.OK
	changed := c.settle(ch, r.Reason, r.Message, r.At)
	if changed || !wasChecked {
		c.propagate(ch, r.At)
	}
	publish := len(c.pending) > 0
	c.mu.Unlock()
	if publish {
		c.flush()
	}
	return true
}

// apply counts a result and moves the check's health by the thresholds,
// queueing a transition when it changed. The first result of a check that
// was never checked decides its health directly (see Checker). c.mu is held.
func (c *Checker) apply(ch *check, r Result) bool {
	st := &ch.state
	first := !st.Checked
	st.Last = r
	st.Checked = true
	if r.OK {
		st.Successes++
		st.ConsecutiveSuccesses++
		st.ConsecutiveFailures = 0
	} else {
		st.Failures++
		st.ConsecutiveFailures++
		st.ConsecutiveSuccesses = 0
	}

	var msg string
	switch {
	case r.OK == st.Probed:
		return false
	case first:
		msg = r.Message + " on the first probe"
	case r.OK && st.ConsecutiveSuccesses >= ch.spec.SuccessThreshold:
		msg = fmt.Sprintf("%s after %s", r.Message, count(st.ConsecutiveSuccesses, "consecutive success", "consecutive successes"))
	case !r.OK && st.ConsecutiveFailures >= ch.spec.FailureThreshold:
		msg = fmt.Sprintf("%s after %s", r.Message, count(st.ConsecutiveFailures, "consecutive failure", "consecutive failures"))
	default:
		return false
	}
	st.Probed = r.OK
	return c.settle(ch, r.Reason, msg, r.At)
}

// settle makes a check's Healthy follow its Probed health, or its override
// while one holds it, and queues a transition when Healthy changed. c.mu
// is held.
func (c *Checker) settle(ch *check, reason Reason, msg string, at time.Time) bool {
	st := &ch.state
	healthy := st.effective()
	if healthy == st.Healthy {
		return false
	}
	st.Healthy = healthy
	st.Since = at
	st.Transitions++
	ch.healthy.Store(healthy)
	c.pending = append(c.pending, Transition{Check: ch.spec.Name, From: !healthy, To: healthy, Reason: reason, Message: msg, At: at, State: *st})
	return true
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// flush delivers queued transitions to the subscribers in the order they
// were queued. Whichever goroutine gets emitMu delivers what every other
// one queued before it, so order holds without calling out under mu.
func (c *Checker) flush() {
	c.emitMu.Lock()
	defer c.emitMu.Unlock()
	for {
		c.mu.Lock()
		queue := c.pending
		c.pending = nil
		c.mu.Unlock()
		if len(queue) == 0 {
			return
		}
		for _, t := range queue {
			for _, fn := range c.subscribers {
				fn(t)
			}
		}
	}
}

// inherit takes over the state of the checks of prev whose spec did not
// change, re-derives the calculated checks, queues a transition for every
// check whose health is not the one subscribers have seen since New, and
// plans the probing: of every check that probes, and apart, of the new
// ones among them.
func (c *Checker) inherit(prev *Checker, now time.Time) (plans, fresh []plan) {
	type handover struct {
		state State
		next  time.Time
	}
	from := map[*check]handover{}
	if prev != nil && prev != c {
		for _, ch := range c.checks {
			p, ok := prev.byName[ch.spec.Name]
			if !ok || !p.spec.Equal(ch.spec) {
				continue
			}
			if st, ok := prev.State(ch.spec.Name); ok {
				from[ch] = handover{state: st, next: time.Unix(0, p.next.Load())}
			}
		}
	}

	c.mu.Lock()
	seen := make(map[*check]bool, len(c.checks))
	for _, ch := range c.checks {
		seen[ch] = ch.state.Healthy
		if h, ok := from[ch]; ok {
			ch.state = h.state
			ch.healthy.Store(h.state.Healthy)
		} else if ch.spec.Kind != Calculated {
			ch.state.Since = now
		}
	}
	for _, calc := range c.calcs {
		c.evaluate(calc, now)
	}
	for _, ch := range c.checks {
		if ch.spec.Kind != Calculated && ch.state.Healthy != seen[ch] {
			c.pending = append(c.pending, Transition{Check: ch.spec.Name, From: seen[ch], To: ch.state.Healthy,
				Reason: ch.state.Last.Reason, Message: ch.state.Last.Message + " (inherited)", At: now, Inherited: true, State: ch.state})
		}
	}
	for _, calc := range c.calcs {
		if calc.state.Healthy != seen[calc] {
			t := calculatedTransition(calc, now)
			t.From = seen[calc]
			t.Inherited = true
			c.pending = append(c.pending, t)
		}
	}
	c.mu.Unlock()

	for _, ch := range c.checks {
		if ch.probe == nil {
			continue
		}
		interval := ch.spec.Interval
		// Spread first probes so that thousands of checks do not connect
		// in the same millisecond, yet know every health within a fraction
		// of a second; then probe on a grid of random phase.
		p := plan{check: ch, interval: interval, fast: ch.spec.FastInterval,
			first: randDuration(min(interval, firstProbeSpread)), next: &ch.next}
		p.anchor = now.Add(randDuration(interval))
		if h, ok := from[ch]; ok {
			// Carry on with the previous configuration's phase, so that a
			// reload neither bursts nor delays.
			if wait := h.next.Sub(now); wait >= 0 && wait <= interval {
				p.first = wait
				p.anchor = h.next
			}
		} else {
			fresh = append(fresh, p)
		}
		plans = append(plans, p)
	}
	return plans, fresh
}
