package healthfailover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hostileServer is a loopback TCP listener whose connections are handed to
// a misbehaving handler. Cleanup closes the listener and every connection,
// which ends every handler, and waits for them: no goroutine outlives the test.
type hostileServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newHostileServer(t *testing.T, handle func(c net.Conn, done <-chan struct{})) *hostileServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hostileServer{ln: ln}
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(c, done)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *hostileServer) addr() string { return s.ln.Addr().String() }

// newNeverAccepting returns the address of a listener that never accepts
// and whose accept queue is full, so that the kernel drops further SYNs:
// a connect to it times out, as to a host that is down. Linux completes
// handshakes into the backlog even if nobody accepts, so a listener that
// merely never accepts would look like one that accepts and never writes;
// with listen(2)'s backlog 0 the queue holds one connection, and the test
// fills it with dummies (dialling until one times out) before any probe.
func newNeverAccepting(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "never-accepting listener")
	ln, err := net.FileListener(f)
	f.Close() // FileListener holds a duplicate
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var dummies []net.Conn
	t.Cleanup(func() {
		for _, c := range dummies {
			c.Close()
		}
		ln.Close()
	})
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr // the queue is full: SYNs are dropped from now on
			}
			t.Fatalf("filling the accept queue of %s: %v", addr, err)
		}
		dummies = append(dummies, c)
	}
	t.Fatalf("the accept queue of %s never filled after %d connections", addr, len(dummies))
	return ""
}

// readRequest reads a probe's request head, so that a handler answers (or
// fails to) after the probe has written, as a real server would.
func readRequest(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte("\r\n\r\n")) && len(got) < 64<<10 {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})
}

// The misbehaving handlers. Each ends when the probe goes away (a write or
// read fails) or at cleanup.
var (
	// silent accepts, reads, and never writes: for http, and for https a
	// TLS handshake that stalls after the ClientHello.
	silent = func(c net.Conn, done <-chan struct{}) { _, _ = io.Copy(io.Discard, c) }

	// trickle sends a status line one byte a second: the head never
	// completes within a response timeout.
	trickle = func(c net.Conn, done <-chan struct{}) {
		readRequest(c)
		head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nOK")
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for _, b := range head {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-done:
				return
			}
		}
	}

	// endlessBody sends a valid head and then a body that never ends and
	// never contains the search string.
	endlessBody = func(c net.Conn, done <-chan struct{}) {
		readRequest(c)
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("lorem ipsum "), 1024)
		// Bounded: the probe stops reading after a few KiB and resets,
		// which fails a write within a few iterations; cleanup closes the
		// connection otherwise.
		for range 1 << 20 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}

	// resetMidResponse writes half a response head and resets the
	// connection (SO_LINGER 0: an RST, not a FIN).
	resetMidResponse = func(c net.Conn, done <-chan struct{}) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Ty")
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}

	// plainToTLS answers a ClientHello with plain HTTP: not TLS at all.
	plainToTLS = func(c net.Conn, done <-chan struct{}) {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		_, _ = io.Copy(io.Discard, c)
	}
)

// hugeHeaders sends a status line and 1 MiB of header lines, built once.
func hugeHeaders() func(net.Conn, <-chan struct{}) {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("h", 1000))
	}
	b.WriteString("\r\nOK")
	head := b.Bytes()
	return func(c net.Conn, done <-chan struct{}) {
		readRequest(c)
		_, _ = c.Write(head)
	}
}

// hostileCase is one misbehaving backend, its check and what the check must
// end up saying.
type hostileCase struct {
	name    string
	url     string
	options string // extra check options
	reason  string
	message string // a part of last.message
	// bound is the most one probe may take: its timeouts.
	bound time.Duration
}

// TestHostileBackendsStallNothing runs one check against each kind of
// broken or hostile backend at once, beside a healthy one, in one CoreDNS.
// Each hostile check must go down for the right reason within its
// timeouts, and keep probing; the healthy check must keep its schedule and
// its record its answer; DNS must answer fast throughout; and reading an
// endless body or a huge header must cost bounded memory.
func TestHostileBackendsStallNothing(t *testing.T) {
	const (
		interval        = 300 * time.Millisecond
		connectTimeout  = 200 * time.Millisecond
		responseTimeout = 250 * time.Millisecond
		// A probe's duration is measured by the probe itself; on a busy
		// 2-core machine under -race its timer may fire late.
		probeSlack = 250 * time.Millisecond
		// The healthy check's rate is measured over this long.
		window          = 2500 * time.Millisecond
		healthyInterval = 100 * time.Millisecond
		queryEvery      = 20 * time.Millisecond
		fastQuery       = 50 * time.Millisecond
	)
	both := connectTimeout + responseTimeout
	cases := []hostileCase{
		{"never-accepts", "http://" + newNeverAccepting(t) + "/", "", "connect_timeout", "connect timeout after", connectTimeout},
		{"silent", "http://" + newHostileServer(t, silent).addr() + "/", "", "response_timeout", "no response within", both},
		// A status line that is still arriving when the time is up is a
		// response timeout, not a malformed reply.
		{"trickle", "http://" + newHostileServer(t, trickle).addr() + "/", "", "response_timeout", "no response within", both},
		{"endless-body", "http://" + newHostileServer(t, endlessBody).addr() + "/", "search NEEDLE", "search_not_found", "search string not found in the first 5120 bytes", both},
		{"huge-header", "http://" + newHostileServer(t, hugeHeaders()).addr() + "/", "", "protocol_error", "header larger than", both},
		// A stalled handshake is a response timeout: everything after the
		// connection, the handshake included, shares response_timeout
		// (checker/probe_http.go); tls_error is for a peer that is not TLS.
		{"tls-stall", "https://" + newHostileServer(t, silent).addr() + "/", "", "response_timeout", "(TLS handshake)", both},
		{"not-tls", "https://" + newHostileServer(t, plainToTLS).addr() + "/", "", "tls_error", "tls:", both},
		{"reset", "http://" + newHostileServer(t, resetMidResponse).addr() + "/", "", "protocol_error", "protocol:", both},
	}
	healthy := newBackend(t, "OK")
	statusAddr := freeAddr(t)

	var block strings.Builder
	fmt.Fprintf(&block, `
		check healthy %s/ {
			interval %s
		}
		record healthy.example.org A {
			primary 127.0.0.1 check healthy
			secondary 127.0.0.2
		}`, healthy.URL, healthyInterval)
	for i, c := range cases {
		fmt.Fprintf(&block, `
		check %s %s {
			interval %s
			connect_timeout %s
			response_timeout %s
			failure_threshold 1
			%s
		}
		record %s.example.org A {
			primary 127.0.1.%d check %s
			secondary 127.0.2.%d
		}`, c.name, c.url, interval, connectTimeout, responseTimeout, c.options, c.name, i+1, c.name, i+1)
	}
	corefile := fmt.Sprintf("example.org:0 {\n\thealthfailover {%s\n\t\tstatus %s\n\t}\n}\n", block.String(), statusAddr)
	_, udp, _ := startCoreDNS(t, corefile)

	// Every hostile check fails its first probe, which decides its health
	// directly: wait for all of them, then measure from a settled state.
	var doc statusDoc
	eventually(t, 10*time.Second, "every hostile check unhealthy with a result", func() bool {
		doc = hostileStatus(t, statusAddr)
		for _, c := range cases {
			st, ok := findCheck(doc, c.name)
			if !ok || st.Healthy || st.Last == nil {
				return false
			}
		}
		return true
	})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	startHealthy, _ := findCheck(doc, "healthy")
	startHostile := map[string]uint64{}
	for _, c := range cases {
		st, _ := findCheck(doc, c.name)
		startHostile[c.name] = st.Failures
	}
	start := time.Now()

	// DNS queries at a steady pace for the whole window, from their own
	// goroutine, so that a stalled server shows as slow or lost answers.
	type queryResult struct {
		took time.Duration
		ips  []string
		err  error
	}
	results := make(chan []queryResult, 1)
	go func() {
		var out []queryResult
		client := &dns.Client{Net: "udp", Timeout: time.Second}
		tick := time.NewTicker(queryEvery)
		defer tick.Stop()
		for i := 0; i < int(2*window/queryEvery) && time.Since(start) < window; i++ {
			m := new(dns.Msg)
			m.SetQuestion("healthy.example.org.", dns.TypeA)
			began := time.Now()
			r, _, err := client.Exchange(m, udp)
			res := queryResult{took: time.Since(began), err: err}
			if err == nil {
				for _, rr := range r.Answer {
					if a, ok := rr.(*dns.A); ok {
						res.ips = append(res.ips, a.A.String())
					}
				}
			}
			out = append(out, res)
			<-tick.C
		}
		results <- out
	}()

	// Meanwhile, every probe result the status endpoint shows: its duration
	// must stay within its timeouts, and the hostile checks must stay down.
	seen := map[string]map[time.Time]bool{}
	wrongResults := map[string]int{} // reported once per check
	poll := time.NewTicker(50 * time.Millisecond)
	var peak uint64 // heap in use between collections: what a probe holds while it reads
	for i := 0; i < int(2*window/(50*time.Millisecond)) && time.Since(start) < window; i++ {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		doc = hostileStatus(t, statusAddr)
		for _, c := range cases {
			st, ok := findCheck(doc, c.name)
			if !ok || st.Last == nil {
				t.Fatalf("check %s missing from the status endpoint", c.name)
			}
			if seen[c.name] == nil {
				seen[c.name] = map[time.Time]bool{}
			}
			if seen[c.name][st.Last.At] {
				continue
			}
			seen[c.name][st.Last.At] = true
			total := time.Duration(st.Last.Phases["total"]) * time.Microsecond
			if total > c.bound+probeSlack {
				t.Errorf("check %s: a probe took %s, more than its timeouts %s + %s", c.name, total, c.bound, probeSlack)
			}
			if st.Healthy || string(st.Last.Reason) != c.reason || !strings.Contains(st.Last.Message, c.message) {
				wrongResults[c.name]++
				if wrongResults[c.name] == 1 {
					t.Errorf("check %s: healthy=%t, last %s %q; want unhealthy, %s %q", c.name, st.Healthy, st.Last.Reason, st.Last.Message, c.reason, c.message)
				}
			}
		}
		<-poll.C
	}
	poll.Stop()
	queries := <-results
	elapsed := time.Since(start)

	// The healthy check kept its schedule: one probe per interval, less a
	// margin for a late timer on a busy machine, and it never failed enough
	// to go down.
	endHealthy, _ := findCheck(doc, "healthy")
	probes := (endHealthy.Successes + endHealthy.Failures) - (startHealthy.Successes + startHealthy.Failures)
	want := float64(elapsed) / float64(healthyInterval)
	t.Logf("healthy check: %d probes in %s (%.0f expected), %d failures; last probe took %dµs", probes, elapsed.Round(time.Millisecond), want, endHealthy.Failures, endHealthy.Last.Phases["total"])
	if float64(probes) < 0.7*want-1 || float64(probes) > want+2 {
		t.Errorf("healthy check probed %d times in %s, want about %.0f (one per %s)", probes, elapsed, want, healthyInterval)
	}
	if !endHealthy.Healthy || endHealthy.Transitions != 0 {
		t.Errorf("healthy check: healthy=%t after %d transitions, want healthy throughout", endHealthy.Healthy, endHealthy.Transitions)
	}
	// The hostile checks kept probing too: none is stuck on its backend.
	for _, c := range cases {
		st, _ := findCheck(doc, c.name)
		n := st.Failures - startHostile[c.name]
		t.Logf("%-14s %d probes in the window, %d distinct results seen (%d wrong), last %s %q in %dµs",
			c.name, n, len(seen[c.name]), wrongResults[c.name], st.Last.Reason, st.Last.Message, st.Last.Phases["total"])
		if n < 3 {
			t.Errorf("check %s probed %d times in %s at an interval of %s: it is stuck", c.name, n, elapsed, interval)
		}
	}

	// DNS kept answering, correctly and fast.
	var slow, wrong int
	var durations []time.Duration
	for _, q := range queries {
		switch {
		case q.err != nil:
			t.Errorf("DNS query failed: %v", q.err)
		case !sameAnswer(q.ips, "127.0.0.1"):
			wrong++
		}
		durations = append(durations, q.took)
		if q.took > fastQuery {
			slow++
		}
	}
	slices.Sort(durations)
	if len(durations) < int(window/queryEvery)/2 {
		t.Fatalf("only %d DNS queries in %s", len(durations), elapsed)
	}
	p50, p99, worst := durations[len(durations)/2], durations[len(durations)*99/100], durations[len(durations)-1]
	t.Logf("DNS: %d queries, %d over %s; p50 %s, p99 %s, max %s", len(queries), slow, fastQuery, p50, p99, worst)
	if wrong > 0 {
		t.Errorf("%d of %d answers for the healthy record were not its primary", wrong, len(queries))
	}
	// A stall would show in every answer queued behind it; a busy machine
	// may delay a rare one, so 2% may be slower but none by more than a
	// probe's timeouts.
	if slow > max(2, len(queries)/50) || worst > both {
		t.Errorf("DNS answers: %d of %d slower than %s, slowest %s", slow, len(queries), fastQuery, worst)
	}
	for i, c := range cases {
		ips, _ := addresses(t, "udp", udp, c.name+".example.org.")
		if !sameAnswer(ips, fmt.Sprintf("127.0.2.%d", i+1)) {
			t.Errorf("record %s.example.org: %v, want its secondary", c.name, ips)
		}
	}

	// Memory: the endless body and the huge header were read up to fixed
	// limits, never whole; what the probes keep after a collection is
	// their pooled buffers.
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use: %.1f MiB before, %.1f MiB after (%+.1f MiB), peak %.1f MiB", mib(before.HeapInuse), mib(after.HeapInuse), float64(growth)/(1<<20), mib(peak))
	if growth > 4<<20 {
		t.Errorf("heap in use grew by %.1f MiB in %s of hostile backends, want at most 4 MiB", float64(growth)/(1<<20), elapsed)
	}
	// Garbage between collections lets the heap double before the next
	// one; a probe that read an endless body whole would hold hundreds of
	// MiB (loopback moves GiB a second).
	if peak > 2*before.HeapInuse+16<<20 {
		t.Errorf("heap in use peaked at %.1f MiB during the window (%.1f MiB before)", mib(peak), mib(before.HeapInuse))
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func hostileStatus(t *testing.T, addr string) statusDoc {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/status")
	if code != http.StatusOK {
		t.Fatalf("status endpoint: %d %s", code, body)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status JSON: %v", err)
	}
	return doc
}

func findCheck(doc statusDoc, name string) (checkStatus, bool) {
	for _, c := range doc.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return checkStatus{}, false
}
