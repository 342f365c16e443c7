// Package fakebackend has the loopback servers that health checks probe in
// the tests, the benchmarks and the demo: an HTTP backend whose health is
// switched at run time, raw TCP servers that misbehave on purpose (a black
// hole that accepts and never answers, among others), a port where nothing
// listens and one whose connects time out.
//
// Start* functions return an error and leave closing to the caller; New*
// functions are for tests: they fail the test and close at its end.
package fakebackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Failure is how an HTTP backend fails while it is down.
type Failure int

const (
	// Unavailable answers 503 Service Unavailable.
	Unavailable Failure = iota
	// InternalError answers 500 Internal Server Error.
	InternalError
	// Hang reads the request and never answers, until the client gives up.
	Hang
	// Slow answers as when up, but Options.Delay late.
	Slow
	// Refuse closes the listener: connections are refused until it is up
	// again, on the same address.
	Refuse
)

// Options describe an HTTP backend.
type Options struct {
	IP      string       // a loopback address to listen on; default 127.0.0.1
	Port    int          // default: a free port
	Body    string       // answered with 200 while up
	Handler http.Handler // answers while up instead of Body
	Failure Failure      // what it does while down
	Delay   time.Duration
}

// HTTP is a web server on a loopback address whose health is switched at
// run time. It remembers when it was switched: the truth that answers can be
// judged against.
type HTTP struct {
	opts     Options
	addr     string // the same across a closed and reopened listener
	up       atomic.Bool
	requests atomic.Int64
	held     atomic.Int64 // requests a Hang or Slow backend is holding now

	// stopped frees the handlers that hang or wait, when the backend closes.
	stopped context.Context
	stop    context.CancelFunc

	mu      sync.Mutex
	srv     *http.Server  // nil while refusing or closed
	served  chan struct{} // closed when srv's Serve has returned
	closed  bool
	changes []Change
}

// Change is a switch of a backend's health, stamped once it took effect.
type Change struct {
	At time.Time
	Up bool
}

// StartHTTP starts a backend that is up.
func StartHTTP(o Options) (*HTTP, error) {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if err := loopbackOnly(o.IP); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(o.Port)))
	if err != nil {
		return nil, err
	}
	return startOn(ln, o), nil
}

// StartHTTPShared starts one backend per Options on one port, each on its
// own IP, so that they differ only in their address as servers of one
// service in several places do. The first listener is held while the others
// are tried, so the port cannot be taken in between.
func StartHTTPShared(opts ...Options) ([]*HTTP, error) {
	if len(opts) == 0 {
		return nil, errors.New("fakebackend: no backends to start")
	}
	opts = append([]Options(nil), opts...)
	for i := range opts {
		if opts[i].IP == "" {
			opts[i].IP = "127.0.0.1"
		}
		if err := loopbackOnly(opts[i].IP); err != nil {
			return nil, err
		}
	}
	for range 100 {
		lns, ok, err := listenShared(opts)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		out := make([]*HTTP, len(opts))
		for i, o := range opts {
			out[i] = startOn(lns[i], o)
		}
		return out, nil
	}
	return nil, fmt.Errorf("fakebackend: no TCP port free on all of %v", ips(opts))
}

func listenShared(opts []Options) ([]net.Listener, bool, error) {
	first, err := net.Listen("tcp", net.JoinHostPort(opts[0].IP, "0"))
	if err != nil {
		return nil, false, err
	}
	port := strconv.Itoa(first.Addr().(*net.TCPAddr).Port)
	lns := []net.Listener{first}
	for _, o := range opts[1:] {
		ln, err := net.Listen("tcp", net.JoinHostPort(o.IP, port))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, false, nil
		}
		lns = append(lns, ln)
	}
	return lns, true, nil
}

func ips(opts []Options) []string {
	var out []string
	for _, o := range opts {
		out = append(out, o.IP)
	}
	return out
}

func startOn(ln net.Listener, o Options) *HTTP {
	b := &HTTP{opts: o, addr: ln.Addr().String()}
	b.opts.IP, _, _ = net.SplitHostPort(b.addr)
	b.stopped, b.stop = context.WithCancel(context.Background())
	b.up.Store(true)
	b.changes = []Change{{At: time.Now(), Up: true}}
	b.serve(ln)
	return b
}

// serve runs a new http.Server on ln; b.mu is held or b not yet shared.
func (b *HTTP) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           http.HandlerFunc(b.handle),
		ErrorLog:          log.New(io.Discard, "", 0),
		ReadHeaderTimeout: 5 * time.Second,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	b.srv, b.served = srv, served
}

func (b *HTTP) handle(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	if !b.up.Load() {
		switch b.opts.Failure {
		case Unavailable, Refuse: // Refuse: a request on a connection from before the close
			http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
			return
		case InternalError:
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		case Hang:
			b.held.Add(1)
			defer b.held.Add(-1)
			select {
			case <-r.Context().Done(): // the client gave up
			case <-b.stopped.Done():
			}
			return
		case Slow:
			b.held.Add(1)
			defer b.held.Add(-1)
			t := time.NewTimer(b.opts.Delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			case <-b.stopped.Done():
				return
			}
		}
	}
	if b.opts.Handler != nil {
		b.opts.Handler.ServeHTTP(w, r)
		return
	}
	io.WriteString(w, b.opts.Body)
}

// Addr is the backend's IP:PORT.
func (b *HTTP) Addr() string { return b.addr }

// URL is http://IP:PORT, without a path.
func (b *HTTP) URL() string { return "http://" + b.addr }

// IP is the address the backend listens on.
func (b *HTTP) IP() string { return b.opts.IP }

// Port is the port the backend listens on.
func (b *HTTP) Port() int {
	_, p, _ := net.SplitHostPort(b.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Requests counts the requests the backend has had.
func (b *HTTP) Requests() int64 { return b.requests.Load() }

// Held counts the requests a backend that hangs or answers slowly is
// holding right now: a client is waiting on it.
func (b *HTTP) Held() int64 { return b.held.Load() }

// Up tells whether the backend is up.
func (b *HTTP) Up() bool { return b.up.Load() }

// SetUp switches the backend up or down. A backend that refuses closes its
// listener and every connection when it goes down, and listens again on the
// same address when it comes up (retrying for a second while the port is
// not free yet).
func (b *HTTP) SetUp(up bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("fakebackend: the backend is closed")
	}
	if b.opts.Failure == Refuse && up != b.up.Load() {
		if up {
			if err := b.listenAgain(); err != nil {
				return err
			}
		} else {
			b.shutdown()
		}
	}
	b.up.Store(up)
	b.changes = append(b.changes, Change{At: time.Now(), Up: up})
	return nil
}

func (b *HTTP) listenAgain() error {
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			b.serve(ln)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("fakebackend: listen again on %s: %w", b.addr, err)
}

// shutdown closes the server and its connections and waits for Serve to
// return; b.mu is held.
func (b *HTTP) shutdown() {
	if b.srv == nil {
		return
	}
	b.srv.Close()
	<-b.served
	b.srv, b.served = nil, nil
}

// Changes returns every switch of the backend's health, the start first.
func (b *HTTP) Changes() []Change {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Change(nil), b.changes...)
}

// Steady reports the backend's health if it held over the whole of
// [from, to]; ok is false if it was switched within, or had not started by
// from.
func (b *HTTP) Steady(from, to time.Time) (up, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := len(b.changes) - 1
	for i > 0 && b.changes[i].At.After(from) {
		if !b.changes[i].At.After(to) {
			return false, false
		}
		i--
	}
	if b.changes[i].At.After(from) {
		return false, false
	}
	return b.changes[i].Up, true
}

// Close stops the backend and frees the handlers that hang or wait.
func (b *HTTP) Close() {
	b.stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.shutdown()
}

func loopbackOnly(ip string) error {
	if a := net.ParseIP(ip); a == nil || !a.IsLoopback() {
		return fmt.Errorf("fakebackend: %q is not a loopback address", ip)
	}
	return nil
}
