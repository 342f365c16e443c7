package checker

import (
	"fmt"
	"sort"
	"time"
)

// wireCalculated links calculated checks to their children, orders them
// children first and gives every check the calculated checks above it, so
// that a change is propagated upwards in one ordered pass. The specs are
// valid: children exist and there is no cycle.
func (c *Checker) wireCalculated() {
	visited := map[*check]bool{}
	var visit func(ch *check)
	visit = func(ch *check) {
		if visited[ch] {
			return
		}
		visited[ch] = true
		for _, name := range ch.spec.Children {
			child := c.byName[name]
			ch.children = append(ch.children, child)
			visit(child)
		}
		if ch.spec.Kind == Calculated {
			ch.topo = len(c.calcs)
			c.calcs = append(c.calcs, ch)
		}
	}
	for _, ch := range c.checks {
		visit(ch)
	}

	parents := map[*check][]*check{}
	for _, calc := range c.calcs {
		for _, child := range calc.children {
			parents[child] = append(parents[child], calc)
		}
	}
	for _, ch := range c.checks {
		seen := map[*check]bool{}
		queue := parents[ch]
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if seen[p] {
				continue
			}
			seen[p] = true
			ch.ancestors = append(ch.ancestors, p)
			queue = append(queue, parents[p]...)
		}
		sort.Slice(ch.ancestors, func(i, j int) bool { return ch.ancestors[i].topo < ch.ancestors[j].topo })
	}
}

// propagate re-evaluates the calculated checks above ch after its health or
// its Checked changed, queueing their transitions after ch's. c.mu is held.
func (c *Checker) propagate(ch *check, now time.Time) {
	for _, calc := range ch.ancestors {
		if c.evaluate(calc, now) {
			c.pending = append(c.pending, calculatedTransition(calc, now))
		}
	}
}

// evaluate derives a calculated check's state from its children's and
// reports whether its health changed. c.mu is held (or the Checker is not
// shared yet).
func (c *Checker) evaluate(calc *check, now time.Time) bool {
	st := &calc.state
	n, checked := 0, true
	for _, child := range calc.children {
		if child.state.Healthy {
			n++
		}
		checked = checked && child.state.Checked
	}
	healthy := (n >= calc.spec.HealthyThreshold) != calc.spec.Invert
	reason := ReasonChildren
	if calc.spec.Disable {
		healthy, checked, reason = true, true, ReasonDisabled
	}
	if st.Last.At.IsZero() || n != st.HealthyChildren || checked != st.Checked || healthy != st.Probed {
		msg := fmt.Sprintf("%d of %d children healthy, %d needed", n, len(calc.children), calc.spec.HealthyThreshold)
		if calc.spec.Invert {
			msg = "inverted: " + msg
		}
		if calc.spec.Disable {
			msg = "disabled"
		}
		st.Last = Result{OK: healthy, Reason: reason, Message: msg, At: now}
		st.HealthyChildren = n
		st.Checked = checked
	}
	st.Probed = healthy
	healthy = st.effective()
	if healthy == st.Healthy {
		return false
	}
	st.Healthy = healthy
	st.Since = now
	st.Transitions++
	calc.healthy.Store(healthy)
	return true
}

func calculatedTransition(calc *check, now time.Time) Transition {
	return Transition{
		Check:   calc.spec.Name,
		From:    !calc.state.Healthy,
		To:      calc.state.Healthy,
		Reason:  calc.state.Last.Reason,
		Message: calc.state.Last.Message,
		At:      now,
		State:   calc.state,
	}
}
