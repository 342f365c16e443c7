package e2e

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Shorter than the article's interval to keep the suite quick; 100 ms is the
// minimum the plugin accepts.
const (
	fastInterval  = 200 * time.Millisecond
	fastThreshold = 2
	fastBound     = fastInterval*fastThreshold + time.Second
)

// fastCheck declares an HTTP check on a web server's /health.
func fastCheck(name string, w *webServer) string {
	return fmt.Sprintf(`
        check %s http://%s/health {
            interval %s
            failure_threshold %d
        }`, name, w.addr(), fastInterval, fastThreshold)
}

// within fails the test when a measured change was slower than bound.
func within(t *testing.T, what string, took, bound time.Duration) {
	t.Helper()
	report(t, "%s: %s (bound %s)", what, took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("%s took %s, more than %s", what, took, bound)
	}
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
	took := waitAddrs(t, c, name, stopped, 10*time.Second, ips[0], ips[2])
	within(t, "NODE 2 dropped out of the answer", took, fastBound)
	// The order rotates per query; whatever order, only the living answer.
	for range 5 {
		expectAddrs(t, c, name, ips[0], ips[2])
		expectPages(t, answerOf(t, c, name), port, pageOf)
	}

	started := time.Now()
	servers[1].start(t)
	took = waitAddrs(t, c, name, started, 10*time.Second, ips...)
	within(t, "NODE 2 back in the answer", took, fastBound)
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
		took := waitAddrs(t, c, name, since, 10*time.Second, s.want...)
		within(t, s.what, took, fastBound)
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
		took := waitAddrs(t, c, n, since, 10*time.Second, s)
		within(t, n+" failed over to the secondary", took, fastBound)
	}
	for _, n := range names {
		expectAddrs(t, c, n, s)
		expectPages(t, answerOf(t, c, n), port, pageOf)
	}

	since = time.Now()
	ws.stop(t)
	// Fail-open: the primary tier answers as if healthy (Route 53).
	for _, n := range names[:2] {
		took := waitAddrs(t, c, n, since, 10*time.Second, p)
		within(t, n+" answers the primary with everything down", took, fastBound)
	}
	nodata := func(r reply) bool {
		return r.rcode == "NOERROR" && len(r.addrs) == 0 && r.soa && r.aa
	}
	took := waitReply(t, c, "nodata.example.org", since, 10*time.Second, "NODATA", nodata)
	within(t, "nodata.example.org answers NODATA with everything down", took, fastBound)
	servfail := func(r reply) bool { return r.rcode == "SERVFAIL" && len(r.addrs) == 0 }
	took = waitReply(t, c, "servfail.example.org", since, 10*time.Second, "SERVFAIL", servfail)
	within(t, "servfail.example.org answers SERVFAIL with everything down", took, fastBound)
	for _, n := range names[:2] {
		expectAddrs(t, c, n, p)
	}
	expectReply(t, c, "nodata.example.org", "NOERROR, empty answer, SOA in authority, aa", nodata)
	expectReply(t, c, "servfail.example.org", "SERVFAIL", servfail)

	// The secondary comes back: every set answers it again.
	since = time.Now()
	ws.start(t)
	for _, n := range names {
		took := waitAddrs(t, c, n, since, 10*time.Second, s)
		within(t, n+" answers the secondary again", took, fastBound)
	}
	for _, n := range names {
		expectAddrs(t, c, n, s)
		expectPages(t, answerOf(t, c, n), port, pageOf)
	}
}

// TestSIGTERM: CoreDNS stops promptly on SIGTERM, even with a probe in
// flight against a server that accepted the connection and never answers
// (a probe a shutdown waited for would hold it for response_timeout).
func TestSIGTERM(t *testing.T) {
	requireE2E(t)
	hang := newBlackHole(t)
	port := freeSharedPort(t, "127.0.0.51")
	web := startWebServer(t, "UP", "127.0.0.51", port)
	c := startCoreDNS(t, "", fastCheck("up", web)+fmt.Sprintf(`
        check hang http://%s/health {
            interval 30s
            response_timeout 20s
        }
        record www.example.org A {
            primary 127.0.0.51 check up
            primary 127.0.0.52 check hang
        }`, hang.addr()), false)

	// The server answers at once; /ready holds until every check has had
	// its first result, which the hanging probe will not give for 20 s.
	waitReply(t, c, "www.example.org", time.Now(), 15*time.Second, "an answer", func(r reply) bool {
		return r.rcode == "NOERROR" && len(r.addrs) > 0
	})
	select {
	case <-hang.accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging check never connected")
	}
	if code, body, err := c.readyStatus(); err != nil || code != 503 {
		t.Errorf("/ready with a first probe still in flight: status %d %q (%v), want 503", code, body, err)
	}

	took, state := c.sigterm(t, 15*time.Second)
	within(t, "CoreDNS exited after SIGTERM with a probe in flight", took, 5*time.Second)
	if !state.Success() {
		t.Errorf("CoreDNS exit status after SIGTERM: %v, want 0", state)
	}
	if out := c.out.String(); !strings.Contains(out, "SIGTERM") {
		t.Errorf("CoreDNS did not log its SIGTERM shutdown:\n%s", out)
	}
}

// blackHole accepts TCP connections and never answers them.
type blackHole struct {
	ln       net.Listener
	accepted chan struct{} // closed at the first connection
}

func newBlackHole(t *testing.T) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln, accepted: make(chan struct{})}
	var (
		mu    sync.Mutex
		conns []net.Conn
		once  sync.Once
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			once.Do(func() { close(b.accepted) })
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range slices.Clone(conns) {
			c.Close()
		}
		mu.Unlock()
	})
	return b
}

func (b *blackHole) addr() string { return b.ln.Addr().String() }
