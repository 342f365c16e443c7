package checker

import (
	"sync/atomic"
	"testing"
	"time"
)

// A check this member need not probe is not probed, Start does not wait
// for it, and when it is probed again its first probe decides at once:
// counts from before the pause must not hold a dead target healthy.
func TestProbesGateSkipsAndResumesLikeAFirstProbe(t *testing.T) {
	target := newFlipServer(t, 200, "")
	var probing atomic.Bool
	var probes atomic.Int64
	spec := Spec{Name: "east", Kind: HTTP, Address: target.addr(), Interval: MinInterval, FailureThreshold: 3}
	began := time.Now()
	c := started(t, []Spec{spec}, Options{
		Probes:   func(string) bool { return probing.Load() },
		OnResult: func(string, Result) { probes.Add(1) },
	})
	if wait := time.Since(began); wait > DefaultConnectTimeout {
		t.Errorf("Start waited %s for a check it does not probe", wait)
	}
	if st, _ := c.State("east"); st.Checked {
		t.Errorf("a check never probed here is checked: %+v", st)
	}
	if probes.Load() != 0 {
		t.Fatalf("%d probes of a check the gate refused", probes.Load())
	}

	target.set(503, "")
	probing.Store(true)
	eventually(t, 5*time.Second, func() bool { return !c.Healthy("east") }, "the resumed check's first probe decides")
	st, _ := c.State("east")
	if st.ConsecutiveFailures != 1 {
		t.Errorf("decided after %d failures, want the first probe: %+v", st.ConsecutiveFailures, st)
	}
}

// An External checker probes nothing; Set decides its checks without
// thresholds, and calculated checks follow.
func TestExternalCheckerFollowsSet(t *testing.T) {
	specs := []Spec{
		{Name: "east", Kind: HTTP, Address: closedAddr(t), Interval: time.Hour},
		{Name: "west", Kind: TCP, Address: closedAddr(t), Interval: time.Hour},
		{Name: "both", Kind: Calculated, Children: []string{"east", "west"}},
	}
	c, rec := recorded(t, specs, Options{External: true})
	if c.Ready() {
		t.Fatal("ready before any decision")
	}
	now := time.Now()
	c.Set("east", Result{OK: true, Reason: ReasonOK, Message: "2 of 2 views healthy", At: now})
	if c.Ready() {
		t.Fatal("ready with west undecided")
	}
	c.Set("west", Result{OK: false, Reason: ReasonRefused, Message: "0 of 2 views healthy", At: now})
	if !c.Ready() {
		t.Fatalf("not ready after every check was decided: %+v", c.Snapshot())
	}
	if c.Set("both", Result{OK: true, At: now}) || c.Set("nosuch", Result{OK: true, At: now}) {
		t.Error("Set took a calculated check or an unknown name")
	}
	wantTransitions(t, rec.get(),
		"west true->false connect_refused: 0 of 2 views healthy",
		"both true->false children: 1 of 2 children healthy, 2 needed")
	if st, _ := c.State("east"); st.Successes+st.Failures != 0 {
		t.Errorf("an external check counts probes: %+v", st)
	}
}
