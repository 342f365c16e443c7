package checker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// eventually polls cond until it holds or the deadline passes: tests
// synchronise on state, never on a fixed sleep.
func eventually(t *testing.T, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: "+format, append([]any{within}, args...)...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// probeOnce runs one probe of s, defaults applied, as the checker would.
func probeOnce(t *testing.T, s Spec, opts Options) Result {
	t.Helper()
	if s.Name == "" {
		s.Name = "probe"
	}
	s = s.WithDefaults()
	if err := Validate([]Spec{s}); err != nil {
		t.Fatal(err)
	}
	probe, err := newProbe(s, opts, newBuffers())
	if err != nil {
		t.Fatal(err)
	}
	return probe(context.Background())
}

// started makes and starts a Checker that is stopped, and checked for
// leaked goroutines, when the test ends.
func started(t *testing.T, specs []Spec, opts Options) *Checker {
	t.Helper()
	c, err := New(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		noLeak(t)
	})
	c.Start(nil)
	return c
}

// recorded is started, with every transition recorded from before Start.
func recorded(t *testing.T, specs []Spec, opts Options) (*Checker, *transitions) {
	t.Helper()
	c, err := New(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &transitions{}
	c.Subscribe(rec.add)
	t.Cleanup(func() {
		c.Stop()
		noLeak(t)
	})
	c.Start(nil)
	return c, rec
}

// noLeak fails when a goroutine of the checker's outlives Stop. Goroutines
// of other tests' Checkers still running would show too, so tests that use
// it do not run in parallel.
func noLeak(t *testing.T) {
	t.Helper()
	var leaked string
	ok := func() bool {
		leaked = ""
		for _, g := range strings.Split(stacks(), "\n\n") {
			if strings.Contains(g, "checker.(*Checker)") || strings.Contains(g, "checker.(*scheduler)") ||
				strings.Contains(g, "checker.(*httpProbe)") ||
				strings.Contains(g, "checker.(*tcpProbe)") || strings.Contains(g, "checker.(*grpcProbe)") ||
				strings.Contains(g, "checker.timedTLS") {
				leaked = g
				return false
			}
		}
		return true
	}
	// Stop has returned: nothing of ours may be left, but give the runtime
	// a moment to reap goroutines that have returned.
	deadline := time.Now().Add(time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("goroutine left after Stop:\n%s", leaked)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stacks returns the stacks of every goroutine.
func stacks() string {
	for size := 1 << 20; ; size *= 2 {
		buf := make([]byte, size)
		if n := runtime.Stack(buf, true); n < size {
			return string(buf[:n])
		}
	}
}

// flipServer is an httptest server whose status and body change at run time.
type flipServer struct {
	*httptest.Server
	status atomic.Int64
	body   atomic.Value // string
	hits   atomic.Int64
}

func newFlipServer(t *testing.T, status int, body string) *flipServer {
	t.Helper()
	f := &flipServer{}
	f.set(status, body)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		w.WriteHeader(int(f.status.Load()))
		fmt.Fprint(w, f.body.Load().(string))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *flipServer) set(status int, body string) {
	f.status.Store(int64(status))
	f.body.Store(body)
}

func (f *flipServer) addr() string { return f.Listener.Addr().String() }

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rawServer accepts connections and hands each to handle; the test's end
// closes the listener and every connection and waits for the handlers.
func rawServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// silentAddr accepts connections and never says anything.
func silentAddr(t testing.TB) string {
	return rawServer(t, func(conn net.Conn) {
		var b [1]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	})
}

// readRequest reads a request head from conn.
func readRequest(conn net.Conn) (string, error) {
	var head []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := conn.Read(b); err != nil {
			return string(head), err
		}
		head = append(head, b[0])
	}
	return string(head), nil
}

// replyServer answers every request with the given bytes, then runs more
// (which may stall or write forever) if it is not nil.
func replyServer(t *testing.T, reply string, more func(net.Conn)) string {
	return rawServer(t, func(conn net.Conn) {
		if _, err := readRequest(conn); err != nil {
			return
		}
		if _, err := conn.Write([]byte(reply)); err != nil {
			return
		}
		if more != nil {
			more(conn)
		}
		conn.Close()
	})
}

// stall blocks until the peer goes away or the test closes conn.
func stall(conn net.Conn) {
	var b [1]byte
	for {
		if _, err := conn.Read(b[:]); err != nil {
			return
		}
	}
}

// fullBacklogAddr returns a loopback address whose listen queue is full, so
// that a connect there hangs until its timeout: the kernel drops the SYNs.
// It stays on loopback, where a non-routable address would not.
func fullBacklogAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 8 {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Skip("the listen queue never filled up: cannot make a connect time out on loopback here")
	return ""
}

// transitions records what a subscriber is told.
type transitions struct {
	mu   sync.Mutex
	list []Transition
}

func (r *transitions) add(t Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, t)
}

func (r *transitions) get() []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Transition(nil), r.list...)
}

func (r *transitions) of(check string) []Transition {
	var out []Transition
	for _, t := range r.get() {
		if t.Check == check {
			out = append(out, t)
		}
	}
	return out
}
