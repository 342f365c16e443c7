package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// region is one of the article's web servers: a page that names it, and
// /health for the check.
type region struct {
	name string
	ip   string
	port int

	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

func (r *region) addr() string { return net.JoinHostPort(r.ip, strconv.Itoa(r.port)) }

func (r *region) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, r.name) })
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	r.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		srv.Serve(ln)
		close(done)
	}(r.srv, r.done)
}

// start listens on the region's address again after a stop.
func (r *region) start() error {
	ln, err := net.Listen("tcp", r.addr())
	if err != nil {
		return fmt.Errorf("starting %s again on %s: %w", r.name, r.addr(), err)
	}
	r.serve(ln)
	return nil
}

// stop closes the listener and every connection: the port refuses
// connections afterwards, as a stopped web server's does.
func (r *region) stop() {
	if r.srv == nil {
		return
	}
	r.srv.Close()
	<-r.done
	r.srv = nil
}

// listenPair starts both regions on one port, so that they differ only in
// their address, as in the article. The first listener is held while the
// second is tried, so the port cannot be taken in between.
func listenPair(a, b *region) error {
	for range 100 {
		la, err := net.Listen("tcp", net.JoinHostPort(a.ip, "0"))
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a.ip, err)
		}
		port := la.Addr().(*net.TCPAddr).Port
		lb, err := net.Listen("tcp", net.JoinHostPort(b.ip, strconv.Itoa(port)))
		if err != nil {
			la.Close()
			continue
		}
		a.port, b.port = port, port
		a.serve(la)
		b.serve(lb)
		return nil
	}
	return errors.New("no TCP port free on both " + a.ip + " and " + b.ip)
}
