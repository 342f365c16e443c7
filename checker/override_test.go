package checker

import (
	"testing"
	"time"
)

// An override holds a check's health whatever the probes say; probing goes
// on, calculated checks above follow as after a real transition, and
// removing it hands the check back to its probes.
func TestForceHoldsHealthAndCalculatedFollow(t *testing.T) {
	target := newFlipServer(t, 200, "")
	specs := []Spec{
		{Name: "east", Kind: HTTP, Address: target.addr(), Interval: MinInterval, FailureThreshold: 1},
		{Name: "site", Kind: Calculated, Children: []string{"east"}},
	}
	c, rec := recorded(t, specs, Options{})

	c.Force("east", ForceDown, "maintenance.txt:2", "planned maintenance")
	st, _ := c.State("east")
	if c.Healthy("east") || c.Healthy("site") || !st.Probed || st.Forced != ForceDown || st.ForcedBy != "maintenance.txt:2" {
		t.Fatalf("forced down: east %+v, site healthy %v", st, c.Healthy("site"))
	}
	probes := st.Successes
	eventually(t, 5*time.Second, func() bool { st, _ := c.State("east"); return st.Successes > probes+2 }, "probing goes on while forced")
	if c.Healthy("east") {
		t.Fatal("a successful probe undid the override")
	}

	c.Force("east", ForceNone, "", "")
	if !c.Healthy("east") || !c.Healthy("site") {
		t.Fatal("the check did not go back to its probes' health")
	}
	wantTransitions(t, rec.get(),
		"east true->false override: forced down by override (planned maintenance)",
		"site true->false children: 0 of 1 children healthy, 1 needed",
		"east false->true override: override removed, the probes say healthy",
		"site false->true children: 1 of 1 children healthy, 1 needed")

	// Forced up, a dead target changes nothing but Probed.
	c.Force("east", ForceUp, "maintenance.txt:3", "")
	target.set(503, "")
	eventually(t, 5*time.Second, func() bool { st, _ := c.State("east"); return !st.Probed }, "the probes see the target down")
	if !c.Healthy("east") {
		t.Error("forced up, the check follows its probes")
	}
	if c.Force("nosuch", ForceDown, "", "") {
		t.Error("Force took a name it does not know")
	}
}
