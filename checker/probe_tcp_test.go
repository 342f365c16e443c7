package checker

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	// A listener that never says anything is all a tcp check needs.
	r := probeOnce(t, quick(TCP, silentAddr(t)), Options{})
	wantResult(t, r, true, ReasonOK, "connected")
	if r.Phases.Connect <= 0 || r.Phases.Total != r.Phases.Connect {
		t.Errorf("phases %+v", r.Phases)
	}
	wantResult(t, probeOnce(t, quick(TCP, closedAddr(t)), Options{}), false, ReasonRefused, "connect: connection refused")
}

func TestConnectTimeout(t *testing.T) {
	addr := fullBacklogAddr(t)
	for _, kind := range []Kind{TCP, HTTP, HTTPS} {
		s := quick(kind, addr)
		s.ConnectTimeout = 120 * time.Millisecond
		start := time.Now()
		r := probeOnce(t, s, Options{})
		wantResult(t, r, false, ReasonConnectTimeout, "connect timeout after 120ms")
		if took := time.Since(start); took < 100*time.Millisecond || took > 3*time.Second {
			t.Errorf("%s: took %s", kind, took)
		}
	}
}

func TestConnectFailureMessages(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	cases := []struct {
		err     error
		reason  Reason
		message string
	}{
		{opErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)), ReasonRefused, "connect: connection refused"},
		{opErr(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), ReasonConnectError, "connect: no route to host"},
		{opErr(os.NewSyscallError("connect", syscall.ENETUNREACH)), ReasonConnectError, "connect: network is unreachable"},
		{opErr(os.ErrDeadlineExceeded), ReasonConnectTimeout, "connect timeout after 4s"},
		{opErr(context.DeadlineExceeded), ReasonConnectTimeout, "connect timeout after 4s"},
		{opErr(&net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}), ReasonConnectError,
			"connect: lookup nowhere.invalid: no such host"},
		{errors.New("something odd"), ReasonConnectError, "connect: something odd"},
	}
	for _, tc := range cases {
		reason, message := connectFailure(tc.err, 4*time.Second)
		if reason != tc.reason || message != tc.message {
			t.Errorf("%v: got %s %q, want %s %q", tc.err, reason, message, tc.reason, tc.message)
		}
	}
	if _, m := connectFailure(opErr(os.ErrDeadlineExceeded), 1500*time.Millisecond); m != "connect timeout after 1.5s" {
		t.Errorf("got %q", m)
	}
}

// A dial is cut short by its context, so that Stop never waits for a
// connect timeout.
func TestDialCancel(t *testing.T) {
	addr := fullBacklogAddr(t)
	s := quick(TCP, addr).WithDefaults()
	s.ConnectTimeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		newTCPProbe(s).probe(ctx)
		done <- time.Since(start)
	}()
	time.Sleep(50 * time.Millisecond) // let the dial begin; not a synchronisation
	cancel()
	select {
	case took := <-done:
		if took > 2*time.Second {
			t.Errorf("took %s", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dial was not cancelled")
	}
}

func TestInvert(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	s := quick(HTTP, srv.addr())
	s.Invert = true
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonInverted, "inverted: status 200")
	srv.set(503, "")
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "inverted: status 503")
	tcp := quick(TCP, closedAddr(t))
	tcp.Invert = true
	wantResult(t, probeOnce(t, tcp, Options{}), true, ReasonOK, "inverted: connect: connection refused")
}

func TestNextTick(t *testing.T) {
	anchor := time.Unix(1000, 0)
	sec := time.Second
	cases := []struct {
		t    time.Duration // after anchor
		want time.Duration
	}{
		{0, sec},
		{1, sec},
		{sec - 1, sec},
		{sec, 2 * sec},
		{3500 * time.Millisecond, 4 * sec}, // missed ticks are skipped
		{-1, 0},
		{-sec, 0},
		{-sec - 1, -sec},
		{-2500 * time.Millisecond, -2 * sec},
	}
	for _, tc := range cases {
		got := nextTick(anchor, sec, anchor.Add(tc.t)).Sub(anchor)
		if got != tc.want {
			t.Errorf("after %s: %s, want %s", tc.t, got, tc.want)
		}
	}
}
