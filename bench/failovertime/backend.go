package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The ways a backend fails, as health checks see them.
const (
	modeRefused = "refused" // the listener is closed: connections are refused
	mode500     = "http500" // answers 500 Internal Server Error
	modeHang    = "hang"    // accepts and never answers
	modeSlow    = "slow"    // answers 200, but later than response_timeout
)

var allModes = []string{modeRefused, mode500, modeHang, modeSlow}

// backend is an HTTP server on its own loopback address whose behaviour
// flips between healthy and one way of failing.
type backend struct {
	mode    string
	ip      string
	addr    string // ip:port, the same across a closed and reopened listener
	slow    time.Duration
	failing atomic.Bool

	mu  sync.Mutex
	ln  net.Listener // nil while refusing
	srv *http.Server

	// stopped frees the handlers that hang or wait, when the program ends.
	stopped context.Context
	stop    context.CancelFunc
}

func newBackend(mode, ip string, slow time.Duration) (*backend, error) {
	b := &backend{mode: mode, ip: ip, slow: slow}
	b.stopped, b.stop = context.WithCancel(context.Background())
	b.srv = &http.Server{
		Handler:           http.HandlerFunc(b.serve),
		ErrorLog:          log.New(io.Discard, "", 0),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	b.addr = ln.Addr().String()
	b.ln = ln
	go b.srv.Serve(ln)
	return b, nil
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	if b.failing.Load() {
		switch b.mode {
		case mode500:
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		case modeHang:
			select {
			case <-r.Context().Done(): // the probe gave up
			case <-b.stopped.Done():
			}
			return
		case modeSlow:
			select {
			case <-time.After(b.slow):
			case <-r.Context().Done():
				return
			case <-b.stopped.Done():
				return
			}
		}
	}
	io.WriteString(w, "OK\n")
}

// fail makes the backend fail in its mode.
func (b *backend) fail() {
	b.failing.Store(true)
	if b.mode == modeRefused {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.ln != nil {
			b.ln.Close()
			b.ln = nil
		}
	}
}

// heal makes the backend healthy again; for a closed listener, it listens
// again on the same address (within a second).
func (b *backend) heal() error {
	b.failing.Store(false)
	if b.mode != modeRefused {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		return nil
	}
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			b.ln = ln
			go b.srv.Serve(ln)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("listen again on %s: %w", b.addr, err)
}

func (b *backend) close() {
	b.stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b.srv.Shutdown(ctx)
	if b.ln != nil {
		b.ln.Close()
	}
}
