package checker

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastHTTP probes often, with timeouts as long as the interval allows:
// generous enough for a loopback server on a loaded machine.
func fastHTTP(name, addr string) Spec {
	const interval = 250 * time.Millisecond
	return Spec{Name: name, Kind: HTTP, Address: addr, Interval: interval,
		ConnectTimeout: interval, ResponseTimeout: interval, FailureThreshold: 2, SuccessThreshold: 2}
}

func TestFailoverAndBack(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	var results atomic.Int64
	c, err := New([]Spec{fastHTTP("web", srv.addr())}, Options{OnResult: func(check string, r Result) {
		if check == "web" {
			results.Add(1)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &transitions{}
	c.Subscribe(rec.add)
	t.Cleanup(func() { c.Stop(); noLeak(t) })
	if c.Ready() {
		t.Fatal("ready before start")
	}
	c.Start(nil)

	eventually(t, 5*time.Second, c.Ready, "ready")
	if !c.Healthy("web") {
		t.Fatal("unhealthy")
	}
	srv.set(503, "")
	eventually(t, 5*time.Second, func() bool { return !c.Healthy("web") }, "unhealthy after 503s")
	srv.set(200, "")
	eventually(t, 5*time.Second, func() bool { return c.Healthy("web") }, "healthy again")
	wantTransitions(t, rec.get(),
		"web true->false bad_status: status 503 after 2 consecutive failures",
		"web false->true ok: status 200 after 2 consecutive successes")
	if results.Load() < 5 {
		t.Fatalf("OnResult called %d times", results.Load())
	}
	st, _ := c.State("web")
	if st.Successes+st.Failures < 5 || st.Transitions != 2 || st.Last.Phases.Total <= 0 {
		t.Fatalf("state %+v", st)
	}
}

// A dead primary is known after its first probe, not after
// threshold×interval.
func TestFirstProbeFindsDeadPrimary(t *testing.T) {
	s := Spec{Name: "primary", Kind: TCP, Address: closedAddr(t), Interval: time.Hour, FailureThreshold: 10}
	c, rec := recorded(t, []Spec{s}, Options{})
	eventually(t, 3*time.Second, func() bool { return c.Ready() && !c.Healthy("primary") }, "unhealthy after the first probe")
	wantTransitions(t, rec.get(), "primary true->false connect_refused: connect: connection refused on the first probe")
}

func TestDisabledIsNotProbed(t *testing.T) {
	srv := newFlipServer(t, 503, "")
	off := fastHTTP("off", srv.addr())
	off.Disable = true
	var probed atomic.Int64
	c := started(t, []Spec{off, fastHTTP("on", srv.addr())}, Options{OnResult: func(check string, r Result) {
		if check == "off" {
			t.Errorf("disabled check probed: %+v", r)
		}
		probed.Add(1)
	}})
	eventually(t, 5*time.Second, func() bool { return probed.Load() >= 5 }, "probes of the other check")
	st, _ := c.State("off")
	if !c.Healthy("off") || !st.Checked || st.Last.Reason != ReasonDisabled || st.Successes+st.Failures != 0 {
		t.Fatalf("disabled: %+v", st)
	}
	if c.Healthy("on") {
		t.Fatal("the enabled check is healthy on 503")
	}
}

func TestReadersWhileRunning(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	c := started(t, []Spec{fastHTTP("b", srv.addr()), fastHTTP("a", srv.addr()),
		{Name: "c", Kind: Calculated, Children: []string{"a", "b"}}}, Options{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				c.Healthy("a")
				c.State("c")
				c.Ready()
				snap := c.Snapshot()
				if len(snap) != 3 || snap[0].Name != "a" || snap[1].Name != "b" || snap[2].Name != "c" {
					t.Errorf("snapshot %+v", snap)
					return
				}
				runtime.Gosched()
			}
		}()
	}
	for i := range 6 {
		srv.set([]int{200, 500}[i%2], "")
		time.Sleep(30 * time.Millisecond) // let probes run against each status; not a synchronisation
	}
	close(done)
	wg.Wait()

	if c.Healthy("nope") {
		t.Fatal("unknown check healthy")
	}
	if _, ok := c.State("nope"); ok {
		t.Fatal("unknown check has a state")
	}
	specs := c.Specs()
	if len(specs) != 3 || specs[0].Name != "b" || specs[1].Name != "a" || specs[2].HealthyThreshold != 2 || specs[0].Path != "/" {
		t.Fatalf("specs %+v", specs)
	}
	specs[2].Children[0] = "changed"
	if c.Specs()[2].Children[0] != "a" {
		t.Fatal("Specs shares its slices")
	}
}

func TestStopWithProbesInFlight(t *testing.T) {
	silent := silentAddr(t)
	slow := func(name string, kind Kind) Spec {
		return Spec{Name: name, Kind: kind, Address: silent, Interval: 10 * time.Second,
			ConnectTimeout: 5 * time.Second, ResponseTimeout: 5 * time.Second}
	}
	began := make(chan string, 10)
	c, err := New([]Spec{slow("http", HTTP), slow("https", HTTPS)}, Options{onProbe: func(check string, due, at time.Time) {
		began <- check
	}})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		c.Start(nil) // waits for the first probes
	}()
	<-began
	<-began
	time.Sleep(20 * time.Millisecond) // into the exchange; Stop must be prompt at any point anyway
	start := time.Now()
	c.Stop()
	// A Stop that waited for the probes would take their 5 s timeouts; a
	// prompt one takes microseconds, but a loaded machine may add seconds.
	if took := time.Since(start); took >= 4*time.Second {
		t.Fatalf("Stop took %s with probes stuck on a silent backend: it waited for their timeouts", took)
	}
	<-returned
	noLeak(t)
	if st, _ := c.State("http"); st.Checked {
		t.Fatalf("a probe cut short by Stop counted as a result: %+v", st)
	}
}

func TestStopIsIdempotent(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	c, err := New([]Spec{fastHTTP("a", srv.addr())}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Stop() // before Start
	c.Start(nil)
	noLeak(t) // a Start after Stop starts nothing
	c.Stop()

	c, err = New([]Spec{fastHTTP("a", srv.addr()), fastHTTP("b", srv.addr())}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	c.Start(nil)
	c.Start(nil) // no second set of goroutines
	eventually(t, time.Second, func() bool { return countRunning() == 1 }, "one scheduling goroutine")
	time.Sleep(20 * time.Millisecond) // a second one would show by now; not a synchronisation
	if n := countRunning(); n != 1 {
		t.Fatalf("%d scheduling goroutines, want 1", n)
	}
	eventually(t, 5*time.Second, c.Ready, "ready")
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Stop()
		}()
	}
	wg.Wait()
	c.Stop()
	noLeak(t)
}

func countRunning() int {
	return strings.Count(stacks(), "checker.(*scheduler).loop(")
}

func TestInheritOnReload(t *testing.T) {
	up := newFlipServer(t, 200, "")
	dead := closedAddr(t)
	slow := func(name, addr string) Spec {
		return Spec{Name: name, Kind: HTTP, Address: addr, Interval: time.Hour, FailureThreshold: 3}
	}
	specs := []Spec{slow("down", dead), slow("up", up.addr()), slow("changed", dead),
		{Name: "both", Kind: Calculated, Children: []string{"down", "up"}}}
	prev := started(t, specs, Options{})
	eventually(t, 5*time.Second, prev.Ready, "previous configuration ready")

	specs[2].Interval = 2 * time.Hour
	next, err := New(specs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &transitions{}
	next.Subscribe(rec.add)
	t.Cleanup(next.Stop)
	if !next.Healthy("down") {
		t.Fatal("a new check starts healthy")
	}
	next.Start(prev)

	// Before Start returned: the inherited state, and a transition for
	// every health that is not the initial one.
	for _, name := range []string{"down", "up", "both"} {
		was, _ := prev.State(name)
		now, _ := next.State(name)
		if was != now {
			t.Errorf("%s: inherited\n%+v\nwant\n%+v", name, now, was)
		}
	}
	if next.Healthy("down") || next.Healthy("both") || !next.Healthy("up") {
		t.Fatal("inherited health not in effect")
	}
	// A changed check starts anew: Start waited for its first probe.
	wantTransitions(t, rec.get(),
		"down true->false connect_refused: connect: connection refused (inherited)",
		"both true->false children: 1 of 2 children healthy, 2 needed",
		"changed true->false connect_refused: connect: connection refused on the first probe")
	for i, tr := range rec.get() {
		if tr.Inherited != (i < 2) {
			t.Errorf("transition %+v: inherited %v", tr, tr.Inherited)
		}
	}
	if st, _ := next.State("changed"); !st.Checked || st.Healthy || st.Failures != 1 || st.Transitions != 1 {
		t.Fatalf("changed check: %+v", st)
	}
	if !next.Ready() {
		t.Fatal("not ready after Start")
	}
	prev.Stop()
	// The counters carry on where the previous configuration left them.
	st, _ := next.State("down")
	if st.Transitions != 1 || st.Failures != 1 {
		t.Fatalf("down: %+v", st)
	}
}

// A check never overlaps itself, and probes on a fixed-rate grid: a probe
// that overruns its interval (here every one, against a server that never
// answers, with the response timeout as long as the interval) skips the
// ticks it missed rather than catching up.
func TestScheduleNoOverlap(t *testing.T) {
	var mu sync.Mutex
	var events []string // "begin" and "end" of each probe, in order
	var dues []time.Time
	s := fastHTTP("slow", silentAddr(t))
	c := started(t, []Spec{s}, Options{
		onProbe: func(check string, due, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			if at.Before(due) {
				t.Errorf("probe at %s before it was due at %s", at, due)
			}
			events = append(events, "begin")
			dues = append(dues, due)
		},
		OnResult: func(check string, r Result) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, "end")
		},
	})
	eventually(t, 10*time.Second, func() bool { st, _ := c.State("slow"); return st.Failures >= 5 }, "5 probes")
	c.Stop()
	mu.Lock()
	defer mu.Unlock()
	for i, e := range events {
		if want := []string{"begin", "end"}[i%2]; e != want {
			t.Fatalf("probes of one check overlap: %v", events)
		}
	}
	for i := 2; i < len(dues); i++ {
		gap := dues[i].Sub(dues[i-1])
		if gap < 2*s.Interval || gap%s.Interval != 0 {
			t.Fatalf("probes due %s apart: want a multiple of %s, skipping the ticks a slow probe missed", gap, s.Interval)
		}
	}
}
