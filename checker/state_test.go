package checker

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// result makes a probe result as the probes do.
func result(ok bool) Result {
	if ok {
		return Result{OK: true, Reason: ReasonOK, Message: "status 200", Status: 200, At: time.Now()}
	}
	return Result{Reason: ReasonStatus, Message: "status 503", Status: 503, At: time.Now()}
}

// unstarted makes a Checker that is fed results by hand, with a recorder
// subscribed: the threshold logic without timing.
func unstarted(t *testing.T, specs ...Spec) (*Checker, *transitions) {
	t.Helper()
	c, err := New(specs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &transitions{}
	c.Subscribe(rec.add)
	return c, rec
}

func leaf(name string, failures, successes int) Spec {
	return Spec{Name: name, Kind: HTTP, Address: "127.0.0.1:9", FailureThreshold: failures, SuccessThreshold: successes}
}

func feed(c *Checker, name string, oks ...bool) {
	for _, ok := range oks {
		c.record(c.byName[name], result(ok))
	}
}

func wantTransitions(t *testing.T, got []Transition, want ...string) {
	t.Helper()
	var s []string
	for _, tr := range got {
		s = append(s, fmt.Sprintf("%s %v->%v %s: %s", tr.Check, tr.From, tr.To, tr.Reason, tr.Message))
		// A transition carries the state it left the check in.
		if st := tr.State; st.Name != tr.Check || st.Healthy != tr.To || st.Transitions == 0 && !tr.Inherited {
			t.Errorf("transition %s %v->%v carries the state %+v", tr.Check, tr.From, tr.To, st)
		}
	}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Fatalf("transitions\n%q\nwant\n%q", s, want)
	}
}

func TestThresholds(t *testing.T) {
	c, rec := unstarted(t, leaf("a", 3, 2))
	st, _ := c.State("a")
	if !st.Healthy || st.Checked || c.Ready() || !c.Healthy("a") {
		t.Fatalf("initial state %+v", st)
	}

	feed(c, "a", true)
	st, _ = c.State("a")
	if !st.Checked || !c.Ready() || st.Successes != 1 || st.ConsecutiveSuccesses != 1 {
		t.Fatalf("after a success: %+v", st)
	}

	feed(c, "a", false, false, true, false, false) // a success in between resets the count
	if st, _ = c.State("a"); !st.Healthy || st.ConsecutiveFailures != 2 || st.ConsecutiveSuccesses != 0 {
		t.Fatalf("after 2 consecutive failures of 3: %+v", st)
	}
	wantTransitions(t, rec.get())

	feed(c, "a", false)
	wantTransitions(t, rec.get(), "a true->false bad_status: status 503 after 3 consecutive failures")
	st, _ = c.State("a")
	if st.Healthy || c.Healthy("a") || st.Transitions != 1 || st.Since != st.Last.At {
		t.Fatalf("after 3 failures: %+v", st)
	}

	feed(c, "a", false, true, false, true) // 1 success of 2, twice
	if st, _ = c.State("a"); st.Healthy || st.ConsecutiveSuccesses != 1 {
		t.Fatalf("after 1 success of 2: %+v", st)
	}
	feed(c, "a", true)
	wantTransitions(t, rec.get(),
		"a true->false bad_status: status 503 after 3 consecutive failures",
		"a false->true ok: status 200 after 2 consecutive successes")
	st, _ = c.State("a")
	if !st.Healthy || st.Successes != 5 || st.Failures != 7 || st.Transitions != 2 {
		t.Fatalf("end: %+v", st)
	}
}

func TestThresholdOne(t *testing.T) {
	c, rec := unstarted(t, leaf("a", 1, 1))
	feed(c, "a", true, false, false, true)
	wantTransitions(t, rec.get(),
		"a true->false bad_status: status 503 after 1 consecutive failure",
		"a false->true ok: status 200 after 1 consecutive success")
}

// The first probe decides at once; the thresholds apply from the second.
func TestFirstProbeDecides(t *testing.T) {
	c, rec := unstarted(t, leaf("a", 3, 3), leaf("b", 3, 3))
	feed(c, "a", false)
	wantTransitions(t, rec.get(), "a true->false bad_status: status 503 on the first probe")
	feed(c, "a", true, true)
	if c.Healthy("a") {
		t.Fatal("2 successes of 3 turned it healthy")
	}
	feed(c, "a", true)
	if !c.Healthy("a") {
		t.Fatal("3 successes of 3 did not turn it healthy")
	}

	feed(c, "b", true, false, false)
	if !c.Healthy("b") {
		t.Fatal("a success first, then 2 failures of 3, turned it unhealthy")
	}
}

func TestSuccessThresholdDefault(t *testing.T) {
	c, _ := unstarted(t, leaf("a", 2, 0))
	if s := c.Specs()[0]; s.SuccessThreshold != 2 {
		t.Fatalf("success threshold %d, want the failure threshold", s.SuccessThreshold)
	}
	feed(c, "a", false, true)
	if c.Healthy("a") {
		t.Fatal("1 success of 2 turned it healthy")
	}
	feed(c, "a", true)
	if !c.Healthy("a") {
		t.Fatal("2 successes did not turn it healthy")
	}
}

// Subscribers see every check's transitions in order, even when results
// for many checks arrive at once, and may read the Checker meanwhile.
func TestSubscribeOrderConcurrent(t *testing.T) {
	specs := []Spec{{Name: "all", Kind: Calculated, Children: []string{"l0", "l1", "l2", "l3"}, HealthyThreshold: 2}}
	for i := range 4 {
		specs = append(specs, leaf(fmt.Sprintf("l%d", i), 1, 1))
	}
	c, err := New(specs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &transitions{}
	c.Subscribe(func(tr Transition) {
		if _, ok := c.State(tr.Check); !ok { // reading is allowed, and must not deadlock
			t.Error("unknown check")
		}
		c.Snapshot()
		rec.add(tr)
	})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 300 {
				feed(c, fmt.Sprintf("l%d", i), j%2 == 1)
			}
		}()
	}
	wg.Wait()
	for _, s := range specs {
		list := rec.of(s.Name)
		healthy := true
		for _, tr := range list {
			if tr.From != healthy || tr.To == tr.From {
				t.Fatalf("%s: out of order: %+v after health %v", s.Name, tr, healthy)
			}
			healthy = tr.To
		}
		if st, _ := c.State(s.Name); st.Healthy != healthy || c.Healthy(s.Name) != healthy {
			t.Fatalf("%s: last transition to %v, state %v", s.Name, healthy, st.Healthy)
		}
		if s.Kind != Calculated && len(list) != 300 {
			t.Fatalf("%s: %d transitions, want 300", s.Name, len(list))
		}
	}
}
