package main

import (
	"fmt"
	"net/http"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
)

// region is one of the demo's web servers: a page that names it, and
// /health for the check. Stopped, its port refuses connections, as a
// stopped web server's does; started again, it listens on the same address.
type region struct {
	name string
	ip   string
	*fakebackend.HTTP
}

func (r *region) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, r.name) })
	return mux
}

// startRegions starts the regions on one port, so that they differ only in
// their address, as one service's sites do.
func startRegions(regions ...*region) error {
	var opts []fakebackend.Options
	for _, r := range regions {
		opts = append(opts, fakebackend.Options{IP: r.ip, Handler: r.handler(), Failure: fakebackend.Refuse})
	}
	servers, err := fakebackend.StartHTTPShared(opts...)
	if err != nil {
		return err
	}
	for i, r := range regions {
		r.HTTP = servers[i]
	}
	return nil
}

// stop closes the listener and every connection.
func (r *region) stop() { r.SetUp(false) }

// start listens on the region's address again after a stop.
func (r *region) start() error {
	if err := r.SetUp(true); err != nil {
		return fmt.Errorf("starting %s again on %s: %w", r.name, r.Addr(), err)
	}
	return nil
}
