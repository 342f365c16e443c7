package checker

import (
	"fmt"
	"time"
)

// Force is an operator's override of a check's health.
type Force string

// The overrides: none (the probes decide), up and down.
const (
	ForceNone Force = ""
	ForceUp   Force = "up"
	ForceDown Force = "down"
)

// ReasonOverride is the reason of a transition an override caused. It is
// no probe's result, so it is not among Reasons.
const ReasonOverride Reason = "override"

// effective is the health answers follow: the override's, or the probes'.
func (st *State) effective() bool {
	switch st.Forced {
	case ForceUp:
		return true
	case ForceDown:
		return false
	}
	return st.Probed
}

// Force holds a check up or down whatever its probes say, or with
// ForceNone hands it back to them; by says where the override was written
// and reason why. Probing goes on and Probed keeps the probes' health. A
// change of Healthy is published as any transition, and calculated checks
// above follow. False for a name the Checker does not know.
func (c *Checker) Force(name string, f Force, by, reason string) bool {
	ch, ok := c.byName[name]
	if !ok {
		return false
	}
	now := time.Now()
	c.mu.Lock()
	st := &ch.state
	if st.Forced == f && st.ForcedBy == by && st.ForceReason == reason {
		c.mu.Unlock()
		return true
	}
	st.Forced, st.ForcedBy, st.ForceReason = f, by, reason
	msg := fmt.Sprintf("forced %s by override", f)
	if reason != "" {
		msg += " (" + reason + ")"
	}
	if f == ForceNone {
		msg = fmt.Sprintf("override removed, the probes say %s", healthWord(st.Probed))
	}
	if c.settle(ch, ReasonOverride, msg, now) {
		c.propagate(ch, now)
	}
	publish := len(c.pending) > 0
	c.mu.Unlock()
	if publish {
		c.flush()
	}
	return true
}

func healthWord(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "unhealthy"
}
