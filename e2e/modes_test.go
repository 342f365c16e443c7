package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
)

// Shorter than the failover test's interval to keep the suite quick; 100 ms
// is the minimum the plugin accepts.
const (
	fastInterval  = 200 * time.Millisecond
	fastThreshold = 2
	// What a change should take: the probes that notice it and a second
	// for the probe and the query path. It is reported, not asserted: on a
	// loaded machine a timer fires late, and bench/failover-time.sh is
	// where the time is held to a bound. The tests wait up to changeWithin
	// for the change itself.
	fastBound    = fastInterval*fastThreshold + time.Second
	changeWithin = 10 * time.Second
)

// fastCheck declares an HTTP check on a web server's /health.
func fastCheck(name string, w *webServer) string {
	return fmt.Sprintf(`
        check %s http://%s/health {
            interval %s
            failure_threshold %d
        }`, name, w.addr(), fastInterval, fastThreshold)
}

// measured reports how long a change took beside what it should take.
func measured(t *testing.T, what string, took, expected time.Duration) {
	t.Helper()
	report(t, "%s: %s (expected within %s)", what, took.Round(time.Millisecond), expected)
}

// TestActiveActive: three primaries, each with its check. One dies: the
// answer shrinks to the two alive, and every address handed out serves.
func TestActiveActive(t *testing.T) {
	requireE2E(t)
	ips := []string{"127.0.0.21", "127.0.0.22", "127.0.0.23"}
	port := freeSharedPort(t, ips...)
	pageOf := map[string]string{}
	var servers []*webServer
	block := ""
	for i, ip := range ips {
		page := fmt.Sprintf("NODE %d", i+1)
		pageOf[ip] = page
		w := startWebServer(t, page, ip, port)
		servers = append(servers, w)
		block += fastCheck(fmt.Sprintf("node%d", i+1), w)
	}
	block += fmt.Sprintf(`
        record pool.example.org A {
            primary %s check node1
            primary %s check node2
            primary %s check node3
        }`, ips[0], ips[1], ips[2])
	c := startCoreDNS(t, "", block, true)
	const name = "pool.example.org"

	expectAddrs(t, c, name, ips...)
	expectPages(t, answerOf(t, c, name), port, pageOf)

	stopped := time.Now()
	servers[1].stop(t)
	took := waitAddrs(t, c, name, stopped, changeWithin, ips[0], ips[2])
	measured(t, "NODE 2 dropped out of the answer", took, fastBound)
	// The order rotates per query; whatever order, only the living answer.
	for range 5 {
		expectAddrs(t, c, name, ips[0], ips[2])
		expectPages(t, answerOf(t, c, name), port, pageOf)
	}

	started := time.Now()
	servers[1].start(t)
	took = waitAddrs(t, c, name, started, changeWithin, ips...)
	measured(t, "NODE 2 back in the answer", took, fastBound)
	expectAddrs(t, c, name, ips...)
	expectPages(t, answerOf(t, c, name), port, pageOf)
}

// TestMixed: two checked primaries and an unchecked secondary. The primaries
// die one by one: 2 → 1 → the secondary; then they come back.
func TestMixed(t *testing.T) {
	requireE2E(t)
	a, b, dr := "127.0.0.31", "127.0.0.32", "127.0.0.33"
	port := freeSharedPort(t, a, b, dr)
	pageOf := map[string]string{a: "PRIMARY A", b: "PRIMARY B", dr: "SECONDARY"}
	wa := startWebServer(t, pageOf[a], a, port)
	wb := startWebServer(t, pageOf[b], b, port)
	startWebServer(t, pageOf[dr], dr, port)
	// With cache in front, as most Corefiles have it: the plugin's names
	// must bypass it, or clients would get pre-failover answers for 30 s.
	c := startCoreDNS(t, "cache 30", fastCheck("a", wa)+fastCheck("b", wb)+fmt.Sprintf(`
        record www.example.org A {
            primary %s check a
            primary %s check b
            secondary %s
        }`, a, b, dr), true)
	const name = "www.example.org"

	steps := []struct {
		what   string
		change func(*testing.T)
		want   []string
	}{
		{"PRIMARY A stopped, PRIMARY B alone answers", wa.stop, []string{b}},
		{"PRIMARY B stopped too, the secondary answers", wb.stop, []string{dr}},
		{"PRIMARY A started, it answers alone", wa.start, []string{a}},
		{"PRIMARY B started, both primaries answer", wb.start, []string{a, b}},
	}
	expectAddrs(t, c, name, a, b)
	expectPages(t, answerOf(t, c, name), port, pageOf)
	for _, s := range steps {
		since := time.Now()
		s.change(t)
		took := waitAddrs(t, c, name, since, changeWithin, s.want...)
		measured(t, s.what, took, fastBound)
		expectAddrs(t, c, name, s.want...)
		expectPages(t, answerOf(t, c, name), port, pageOf)
	}
}

// TestAllDown: a checked primary and a checked secondary, both stopped, with
// each on_all_down choice in its own record set over the same two checks.
func TestAllDown(t *testing.T) {
	requireE2E(t)
	p, s := "127.0.0.41", "127.0.0.42"
	port := freeSharedPort(t, p, s)
	pageOf := map[string]string{p: "PRIMARY", s: "SECONDARY"}
	wp := startWebServer(t, pageOf[p], p, port)
	ws := startWebServer(t, pageOf[s], s, port)
	block := fastCheck("p", wp) + fastCheck("s", ws)
	// default.example.org leaves on_all_down out: the default is primary.
	for _, mode := range []string{"default", "primary", "nodata", "servfail"} {
		opt := ""
		if mode != "default" {
			opt = "on_all_down " + mode
		}
		block += fmt.Sprintf(`
        record %s.example.org A {
            primary %s check p
            secondary %s check s
            %s
        }`, mode, p, s, opt)
	}
	// cache would keep a SERVFAIL or the old answer unless bypassed.
	c := startCoreDNS(t, "cache 30", block, true)
	names := []string{"default.example.org", "primary.example.org", "nodata.example.org", "servfail.example.org"}

	for _, n := range names {
		expectAddrs(t, c, n, p)
		expectPages(t, answerOf(t, c, n), port, pageOf)
	}
	since := time.Now()
	wp.stop(t)
	// Wait on every name before the slower checks with all clients, so
	// that each time measures the plugin, not the previous name's checks.
	for _, n := range names {
		took := waitAddrs(t, c, n, since, changeWithin, s)
		measured(t, n+" failed over to the secondary", took, fastBound)
	}
	for _, n := range names {
		expectAddrs(t, c, n, s)
		expectPages(t, answerOf(t, c, n), port, pageOf)
	}

	since = time.Now()
	ws.stop(t)
	// Fail-open: the primary tier answers as if healthy (Route 53).
	for _, n := range names[:2] {
		took := waitAddrs(t, c, n, since, changeWithin, p)
		measured(t, n+" answers the primary with everything down", took, fastBound)
	}
	nodata := func(r reply) bool {
		return r.rcode == "NOERROR" && len(r.addrs) == 0 && r.soa && r.aa
	}
	took := waitReply(t, c, "nodata.example.org", since, changeWithin, "NODATA", nodata)
	measured(t, "nodata.example.org answers NODATA with everything down", took, fastBound)
	servfail := func(r reply) bool { return r.rcode == "SERVFAIL" && len(r.addrs) == 0 }
	took = waitReply(t, c, "servfail.example.org", since, changeWithin, "SERVFAIL", servfail)
	measured(t, "servfail.example.org answers SERVFAIL with everything down", took, fastBound)
	for _, n := range names[:2] {
		expectAddrs(t, c, n, p)
	}
	expectReply(t, c, "nodata.example.org", "NOERROR, empty answer, SOA in authority, aa", nodata)
	expectReply(t, c, "servfail.example.org", "SERVFAIL", servfail)

	// The secondary comes back: every set answers it again.
	since = time.Now()
	ws.start(t)
	for _, n := range names {
		took := waitAddrs(t, c, n, since, changeWithin, s)
		measured(t, n+" answers the secondary again", took, fastBound)
	}
	for _, n := range names {
		expectAddrs(t, c, n, s)
		expectPages(t, answerOf(t, c, n), port, pageOf)
	}
}

// TestSIGTERM: CoreDNS stops promptly on SIGTERM, even with a probe in
// flight against a server that took the request and never answers (a
// shutdown that waited for the probe would take its response_timeout).
func TestSIGTERM(t *testing.T) {
	requireE2E(t)
	// Up at first, so that the first probe, which a start waits for, ends
	// at once; the next one, an interval later, hangs: it is switched down.
	// Its timeout is as long as a timeout may be, the interval.
	const hangFor = 20 * time.Second
	hang := fakebackend.NewHTTP(t, fakebackend.Options{Failure: fakebackend.Hang})
	port := freeSharedPort(t, "127.0.0.51")
	web := startWebServer(t, "UP", "127.0.0.51", port)
	c := startCoreDNS(t, "", fastCheck("up", web)+fmt.Sprintf(`
        check hang http://%s/health {
            interval %s
            response_timeout %s
        }
        record www.example.org A {
            primary 127.0.0.51 check up
            primary 127.0.0.52 check hang
        }`, hang.Addr(), hangFor, hangFor), true)
	expectAddrs(t, c, "www.example.org", "127.0.0.51", "127.0.0.52")

	hang.SetUp(false)
	for deadline := time.Now().Add(2 * hangFor); hang.Held() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no probe held by the hanging backend within %s", 2*hangFor)
		}
	}

	// Had the shutdown waited for the probe, it would have taken up to
	// the probe's response_timeout.
	took, state := c.sigterm(t, hangFor*3/4)
	report(t, "CoreDNS exited %s after SIGTERM with a probe in flight", took.Round(time.Millisecond))
	if !state.Success() {
		t.Errorf("CoreDNS exit status after SIGTERM: %v, want 0", state)
	}
	if out := c.Output(); !strings.Contains(out, "SIGTERM") {
		t.Errorf("CoreDNS did not log its SIGTERM shutdown:\n%s", out)
	}
}
