package checker

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Start returns once every new check has a result, so that nothing is ever
// answered from a health nobody has looked at: a dead primary is already
// unhealthy, its calculated parent already decided, and the subscribers
// already told.
func TestStartWaitsForFirstProbes(t *testing.T) {
	up := newFlipServer(t, 200, "")
	dead := closedAddr(t)
	hourly := func(name string, kind Kind, addr string) Spec {
		return Spec{Name: name, Kind: kind, Address: addr, Interval: time.Hour, FailureThreshold: 3}
	}
	off := hourly("off", TCP, dead)
	off.Disable = true
	specs := []Spec{hourly("dead", TCP, dead), hourly("up", HTTP, up.addr()), off,
		{Name: "both", Kind: Calculated, Children: []string{"dead", "up"}}}
	c, rec := recorded(t, specs, Options{})

	if !c.Ready() {
		t.Errorf("not ready when Start returned: %+v", c.Snapshot())
	}
	for name, healthy := range map[string]bool{"dead": false, "up": true, "off": true, "both": false} {
		st, _ := c.State(name)
		if !st.Checked || st.Healthy != healthy || c.Healthy(name) != healthy {
			t.Errorf("%s when Start returned: %+v, want checked and healthy=%v", name, st, healthy)
		}
	}
	wantTransitions(t, rec.get(),
		"dead true->false connect_refused: connect: connection refused on the first probe",
		"both true->false children: 1 of 2 children healthy, 2 needed")
}

// A target that never answers holds Start up for at most its own
// timeouts: the bound is loose, what matters is that Start returns on its
// own, long before anything like the interval.
func TestStartIsBoundedBySilentTargets(t *testing.T) {
	const timeout = 200 * time.Millisecond
	silent := Spec{Name: "silent", Kind: HTTP, Address: silentAddr(t), Interval: time.Hour,
		ConnectTimeout: timeout, ResponseTimeout: timeout}
	specs := []Spec{silent}
	if testing.Short() {
		t.Log("short: no full-backlog target")
	} else {
		specs = append(specs, Spec{Name: "backlog", Kind: TCP, Address: fullBacklogAddr(t), Interval: time.Hour,
			ConnectTimeout: timeout})
	}
	c, err := New(specs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(); noLeak(t) })
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		c.Start(nil)
	}()
	bound := 10 * (2*timeout + firstProbeSpread)
	select {
	case <-returned:
	case <-time.After(bound):
		t.Fatalf("Start still waiting after %s on targets with %s timeouts", bound, timeout)
	}
	// Not asserted: whether the timeouts were recorded before Start gave up
	// on them depends on the machine's load, and both are fine.
	for _, st := range c.Snapshot() {
		t.Logf("%s: checked=%v healthy=%v %s", st.Name, st.Checked, st.Healthy, st.Last.Message)
	}
}

// Stop while Start waits on a probe that would take a minute: both return.
func TestStopDuringStart(t *testing.T) {
	slow := Spec{Name: "slow", Kind: HTTP, Address: silentAddr(t), Interval: time.Hour,
		ConnectTimeout: time.Minute, ResponseTimeout: time.Minute}
	began := make(chan struct{}, 1)
	c, err := New([]Spec{slow}, Options{onProbe: func(string, time.Time, time.Time) { began <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		c.Start(nil)
	}()
	select {
	case <-began:
	case <-returned: // the old behaviour, and not a hang either
	case <-time.After(10 * time.Second):
		t.Fatal("the first probe never began")
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.Stop()
	}()
	for what, done := range map[string]chan struct{}{"Start": returned, "Stop": stopped} {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return after Stop, with a probe that has a minute left", what)
		}
	}
	noLeak(t)
	if st, _ := c.State("slow"); st.Checked {
		t.Fatalf("a probe cut short by Stop counted as a result: %+v", st)
	}
}

// A check inherited on a reload brings its health along: Start neither
// probes it nor waits for it, even when its target has gone silent since.
// A new check beside it is still probed before Start returns.
func TestStartDoesNotWaitForInheritedChecks(t *testing.T) {
	var stalled atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stalled.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { once.Do(func() { close(release) }); srv.Close() })

	web := Spec{Name: "web", Kind: HTTP, Address: srv.Listener.Addr().String(), Interval: time.Hour,
		ConnectTimeout: time.Minute, ResponseTimeout: time.Minute}
	prev := started(t, []Spec{web}, Options{})
	eventually(t, 5*time.Second, prev.Ready, "previous configuration ready")
	stalled.Store(true)

	var probed sync.Map
	next, err := New([]Spec{web, {Name: "dead", Kind: TCP, Address: closedAddr(t), Interval: time.Hour}},
		Options{onProbe: func(check string, _, _ time.Time) { probed.Store(check, true) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(next.Stop)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		next.Start(prev)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Start waits for an inherited check whose target stalls for a minute")
	}
	if _, ok := probed.Load("web"); ok {
		t.Error("the inherited check was probed at start")
	}
	if st, _ := next.State("web"); !st.Checked || !st.Healthy || st.Successes != 1 {
		t.Errorf("inherited state: %+v", st)
	}
	if st, _ := next.State("dead"); !st.Checked || st.Healthy {
		t.Errorf("new check when Start returned: %+v", st)
	}
}
