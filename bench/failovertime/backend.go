package main

import (
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
)

// The ways a backend fails, as health checks see them.
const (
	modeRefused = "refused" // the listener is closed: connections are refused
	mode500     = "http500" // answers 500 Internal Server Error
	modeHang    = "hang"    // accepts and never answers
	modeSlow    = "slow"    // answers 200, but later than response_timeout
)

var allModes = []string{modeRefused, mode500, modeHang, modeSlow}

var failureOf = map[string]fakebackend.Failure{
	modeRefused: fakebackend.Refuse,
	mode500:     fakebackend.InternalError,
	modeHang:    fakebackend.Hang,
	modeSlow:    fakebackend.Slow,
}

// backend is an HTTP server on its own loopback address whose behaviour
// flips between healthy and one way of failing. name is its check's and
// record's (the mode, or the variant of the fast_interval table).
type backend struct {
	name, mode string
	*fakebackend.HTTP
}

func newBackend(name, mode, ip string, slow time.Duration) (*backend, error) {
	h, err := fakebackend.StartHTTP(fakebackend.Options{IP: ip, Body: "OK\n", Failure: failureOf[mode], Delay: slow})
	if err != nil {
		return nil, err
	}
	return &backend{name: name, mode: mode, HTTP: h}, nil
}

// fail makes the backend fail in its mode.
func (b *backend) fail() { b.SetUp(false) }

// heal makes the backend healthy again; for a closed listener, it listens
// again on the same address (within a second).
func (b *backend) heal() error { return b.SetUp(true) }
