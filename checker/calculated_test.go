package checker

import (
	"testing"
	"time"
)

func TestCalculatedNested(t *testing.T) {
	c, rec := unstarted(t,
		Spec{Name: "y", Kind: Calculated, Children: []string{"x", "c"}}, // defined before its child: order is by dependency
		leaf("a", 1, 1), leaf("b", 1, 1), leaf("c", 1, 1),
		Spec{Name: "x", Kind: Calculated, Children: []string{"a", "b"}, HealthyThreshold: 1},
		Spec{Name: "z", Kind: Calculated, Children: []string{"a", "b", "c"}, HealthyThreshold: 2},
	)
	want := func(name string, healthy, checked bool, children int, message string) {
		t.Helper()
		st, _ := c.State(name)
		if st.Healthy != healthy || st.Checked != checked || st.HealthyChildren != children ||
			st.Last.Reason != ReasonChildren || st.Last.Message != message || c.Healthy(name) != healthy {
			t.Fatalf("%s: %+v", name, st)
		}
	}
	if s := c.Specs()[0]; s.HealthyThreshold != 2 {
		t.Fatalf("default healthy threshold %d, want all 2 children", s.HealthyThreshold)
	}
	want("x", true, false, 2, "2 of 2 children healthy, 1 needed")
	want("y", true, false, 2, "2 of 2 children healthy, 2 needed")

	feed(c, "a", true)
	feed(c, "b", true)
	want("x", true, true, 2, "2 of 2 children healthy, 1 needed")
	want("y", true, false, 2, "2 of 2 children healthy, 2 needed") // c not probed yet
	if c.Ready() {
		t.Fatal("ready before c was probed")
	}
	feed(c, "c", true)
	want("y", true, true, 2, "2 of 2 children healthy, 2 needed")
	if !c.Ready() {
		t.Fatal("not ready once every check was probed")
	}
	wantTransitions(t, rec.get())

	feed(c, "a", false)
	want("x", true, true, 1, "1 of 2 children healthy, 1 needed")
	want("z", true, true, 2, "2 of 3 children healthy, 2 needed")
	feed(c, "b", false)
	want("x", false, true, 0, "0 of 2 children healthy, 1 needed")
	want("y", false, true, 1, "1 of 2 children healthy, 2 needed")
	want("z", false, true, 1, "1 of 3 children healthy, 2 needed")
	feed(c, "a", true)
	wantTransitions(t, rec.get(),
		"a true->false bad_status: status 503 after 1 consecutive failure",
		"b true->false bad_status: status 503 after 1 consecutive failure",
		"x true->false children: 0 of 2 children healthy, 1 needed",
		"y true->false children: 1 of 2 children healthy, 2 needed",
		"z true->false children: 1 of 3 children healthy, 2 needed",
		"a false->true ok: status 200 after 1 consecutive success",
		"x false->true children: 1 of 2 children healthy, 1 needed",
		"y false->true children: 2 of 2 children healthy, 2 needed",
		"z false->true children: 2 of 3 children healthy, 2 needed",
	)
	if st, _ := c.State("x"); st.Transitions != 2 {
		t.Fatalf("x: %d transitions", st.Transitions)
	}
}

func TestCalculatedDisabledAndInverted(t *testing.T) {
	c, rec := unstarted(t,
		leaf("a", 1, 1),
		Spec{Name: "off", Kind: HTTP, Address: "127.0.0.1:9", Disable: true},
		Spec{Name: "calc", Kind: Calculated, Children: []string{"a", "off"}},
		Spec{Name: "inv", Kind: Calculated, Children: []string{"a"}, Invert: true},
	)
	// A disabled child is checked and healthy from the start.
	if st, _ := c.State("off"); !st.Healthy || !st.Checked || st.Last.Reason != ReasonDisabled {
		t.Fatalf("disabled: %+v", st)
	}
	if st, _ := c.State("inv"); st.Healthy || st.Last.Message != "inverted: 1 of 1 children healthy, 1 needed" {
		t.Fatalf("inverted: %+v", st)
	}
	feed(c, "a", false)
	wantTransitions(t, rec.get(),
		"a true->false bad_status: status 503 on the first probe",
		"calc true->false children: 1 of 2 children healthy, 2 needed",
		"inv false->true children: inverted: 0 of 1 children healthy, 1 needed")
	if !c.Ready() {
		t.Fatal("not ready")
	}
}

// A calculated check over real probes.
func TestCalculatedLive(t *testing.T) {
	up := newFlipServer(t, 200, "")
	flip := newFlipServer(t, 200, "")
	fast := func(name, addr string) Spec {
		return Spec{Name: name, Kind: HTTP, Address: addr, Interval: 250 * time.Millisecond,
			FailureThreshold: 1, SuccessThreshold: 1}
	}
	c, rec := recorded(t, []Spec{fast("up", up.addr()), fast("flip", flip.addr()),
		{Name: "both", Kind: Calculated, Children: []string{"up", "flip"}}}, Options{})
	eventually(t, 5*time.Second, c.Ready, "ready")
	flip.set(500, "")
	eventually(t, 5*time.Second, func() bool { return !c.Healthy("both") }, "both unhealthy")
	flip.set(200, "")
	eventually(t, 5*time.Second, func() bool { return c.Healthy("both") }, "both healthy again")
	got := rec.get()
	if len(got) < 4 || got[0].Check != "flip" || got[1].Check != "both" || got[2].Check != "flip" || got[3].Check != "both" {
		t.Fatalf("transitions %+v", got)
	}
}
