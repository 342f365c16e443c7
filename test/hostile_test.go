package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/healthfailover/healthfailover/internal/hostile"
)

// TestHostileBackendsStallNothing runs one check against each kind of
// broken or hostile backend at once, beside a healthy one, in one CoreDNS.
// Each hostile check must go down for the right reason (its own timeout, or
// a limit on what a probe reads: the endless body and the huge header are
// never read whole) and keep probing; the healthy check must stay healthy
// and keep probing; DNS must answer right throughout. How long probes take,
// how regularly the healthy check probes, DNS latency and memory are
// measured by bench/hostile, not asserted here.
func TestHostileBackendsStallNothing(t *testing.T) {
	const (
		// Every wait below is a few probes long; this bound only stops a
		// test that is stuck, however loaded the machine.
		within = 30 * time.Second
		// How many more results each check must have, after the first:
		// proof that none is stuck on its backend.
		more = 3
	)
	cases := []hostile.Case{hostile.NeverAccepts(fakebackend.NewNeverAccepting(t))}
	for _, k := range hostile.Kinds {
		cases = append(cases, k.At(fakebackend.NewTCP(t, k.Handle).Addr()))
	}
	healthy := newBackend(t, "OK")
	statusAddr := freeAddr(t)
	corefile := hostile.Corefile(cases, healthy.URL(), statusAddr)
	_, udp, _ := startCoreDNS(t, corefile)

	// Every hostile check fails its first probe, which decides its health
	// directly.
	var doc statusDoc
	eventually(t, within, "every hostile check unhealthy with a result", func() bool {
		doc = readStatus(t, statusAddr)
		for _, c := range cases {
			st, ok := findCheck(doc, c.Name)
			if !ok || st.Healthy || st.Last == nil {
				return false
			}
		}
		return true
	})
	start := map[string]uint64{}
	for _, c := range cases {
		st, _ := findCheck(doc, c.Name)
		start[c.Name] = st.Failures
	}
	startHealthy, _ := findCheck(doc, "healthy")

	// Then, until every check has had more results, every answer and every
	// result is judged.
	wrongResults := map[string]int{} // reported once per check
	var queries, wrongAnswers int
	progressed := func() bool {
		for _, c := range cases {
			st, _ := findCheck(doc, c.Name)
			if st.Failures < start[c.Name]+more {
				return false
			}
		}
		h, _ := findCheck(doc, "healthy")
		return h.Successes >= startHealthy.Successes+more
	}
	eventually(t, within, "every check probing on", func() bool {
		queries++
		if ips, _ := addresses(t, "udp", udp, "healthy.example.org."); !sameAnswer(ips, "127.0.0.1") {
			wrongAnswers++
			if wrongAnswers == 1 {
				t.Errorf("healthy.example.org answered %v, want its primary", ips)
			}
		}
		doc = readStatus(t, statusAddr)
		for _, c := range cases {
			st, ok := findCheck(doc, c.Name)
			if !ok || st.Last == nil {
				t.Fatalf("check %s missing from the status endpoint", c.Name)
			}
			if st.Healthy || st.Last.Reason != c.Reason || !strings.Contains(st.Last.Message, c.Message) {
				wrongResults[c.Name]++
				if wrongResults[c.Name] == 1 {
					t.Errorf("check %s: healthy=%t, last %s %q; want unhealthy, %s %q", c.Name, st.Healthy, st.Last.Reason, st.Last.Message, c.Reason, c.Message)
				}
			}
		}
		return progressed()
	})

	end, _ := findCheck(doc, "healthy")
	t.Logf("%d queries judged, %d wrong; the healthy check had %d more successes, %d failures", queries, wrongAnswers, end.Successes-startHealthy.Successes, end.Failures)
	if !end.Healthy || end.Transitions != 0 {
		t.Errorf("healthy check: healthy=%t after %d transitions, want healthy throughout", end.Healthy, end.Transitions)
	}
	for i, c := range cases {
		ips, _ := addresses(t, "udp", udp, c.Name+".example.org.")
		if !sameAnswer(ips, fmt.Sprintf("127.0.2.%d", i+1)) {
			t.Errorf("record %s.example.org: %v, want its secondary", c.Name, ips)
		}
	}
}

// TestLongStalledProbeStallsNothing: while a probe waits on a backend that
// took the request and holds it (response_timeout 10 s), DNS answers, the
// status endpoint answers and the other checks go on probing. Were any of
// them waiting on that probe, it would come only after the stall: so only
// what happened while the same request was still held counts, and enough
// of it must, within one stall.
func TestLongStalledProbeStallsNothing(t *testing.T) {
	const (
		stall   = 10 * time.Second // the stalling check's interval and response_timeout
		answers = 10               // judged answers within one stall
		more    = 5                // results of the other check within it
		within  = 6 * stall        // only stops a test that is stuck
	)
	// Up at first, so that the first probe (which a start waits for) ends
	// at once; the probes after it are held once it is switched down.
	stalling := fakebackend.NewHTTP(t, fakebackend.Options{Body: "OK", Failure: fakebackend.Hang})
	healthy := newBackend(t, "OK")
	statusAddr := freeAddr(t)
	corefile := fmt.Sprintf(`example.org:0 {
		healthfailover {
			check stalling %s/ {
				interval %s
				response_timeout %s
			}
			check healthy %s/ {
				interval 100ms
			}
			record stalling.example.org A {
				primary 127.0.0.1 check stalling
				secondary 127.0.0.2
			}
			record healthy.example.org A {
				primary 127.0.0.3 check healthy
				secondary 127.0.0.4
			}
			status %s
		}
	}`, stalling.URL(), stall, stall, healthy.URL(), statusAddr)
	_, udp, _ := startCoreDNS(t, corefile)
	eventually(t, within, "both checks probed", func() bool {
		doc := readStatus(t, statusAddr)
		a, _ := findCheck(doc, "stalling")
		b, _ := findCheck(doc, "healthy")
		return a.Checked && b.Checked
	})
	stalling.SetUp(false)

	// A stall is one held request: the count of requests names it.
	var current int64 // the stall being judged; 0 before the first
	var judged int
	var base uint64 // the other check's successes when the stall began
	eventually(t, within, "answers and probes during one stall", func() bool {
		request := stalling.Requests()
		if stalling.Held() == 0 {
			return false // between stalls
		}
		got := map[string][]string{}
		for _, name := range []string{"stalling.example.org.", "healthy.example.org."} {
			got[name], _ = addresses(t, "udp", udp, name)
		}
		st, _ := findCheck(readStatus(t, statusAddr), "healthy")
		if stalling.Held() == 0 || stalling.Requests() != request {
			current = 0 // the stall ended meanwhile: these prove nothing
			return false
		}
		if request != current {
			current, judged, base = request, 0, st.Successes
		}
		// The stalled check's health is its last result's: healthy.
		for name, want := range map[string]string{"stalling.example.org.": "127.0.0.1", "healthy.example.org.": "127.0.0.3"} {
			if !sameAnswer(got[name], want) {
				t.Fatalf("%s during the stall: %v, want %s", name, got[name], want)
			}
		}
		judged++
		return judged >= answers && st.Successes >= base+more
	})
}
