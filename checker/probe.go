package checker

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// newProbe returns the probe function of a check that probes, with invert
// applied.
func newProbe(s Spec, opts Options, bufs *buffers) (func(context.Context) Result, error) {
	var probe func(context.Context) Result
	switch s.Kind {
	case TCP:
		probe = newTCPProbe(s).probe
	case GRPC, GRPCS:
		probe = newGRPCProbe(s, opts).probe
	default:
		p, err := newHTTPProbe(s, opts, bufs)
		if err != nil {
			return nil, err
		}
		probe = p.probe
	}
	if !s.Invert {
		return probe, nil
	}
	return func(ctx context.Context) Result { return invert(probe(ctx)) }, nil
}

// invert turns a success into a failure and back, as Route 53's inverted
// checks do; the message keeps what the probe saw.
func invert(r Result) Result {
	if r.OK {
		r.OK, r.Reason = false, ReasonInverted
	} else {
		r.OK, r.Reason = true, ReasonOK
	}
	r.Message = "inverted: " + r.Message
	return r
}

// newDialer returns the dialer of a check. Keep-alive is off: a probe's
// connection lives for one exchange.
func newDialer(s Spec) *net.Dialer {
	return &net.Dialer{Timeout: s.ConnectTimeout, KeepAlive: -1}
}

// connect opens a probe's own connection, started at start, and records
// in r the connect phase, or the reason it failed (nil then).
func connect(ctx context.Context, d *net.Dialer, address string, start time.Time, r *Result) (*net.TCPConn, time.Time) {
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		r.Reason, r.Message = connectFailure(err, d.Timeout)
		return nil, time.Time{}
	}
	connected := time.Now()
	r.Phases.Connect = connected.Sub(start)
	return conn.(*net.TCPConn), connected
}

// connectFailure turns a dial error into a reason and a message.
func connectFailure(err error, timeout time.Duration) (Reason, string) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused, "connect: connection refused"
	case isTimeout(err):
		return ReasonConnectTimeout, "connect timeout after " + timeout.String()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ReasonConnectError, "connect: " + dnsErr.Error()
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return ReasonConnectError, "connect: " + sysErr.Err.Error()
	}
	return ReasonConnectError, "connect: " + describe(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// describe shortens a network error for a person: "read: connection reset
// by peer", without the addresses they already know from the check.
func describe(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	return err.Error()
}

// closeProbeConn closes a probe's connection with a reset (SO_LINGER 0)
// instead of a FIN. A probe has nothing more to say once it has its answer,
// and an orderly close would leave a TIME_WAIT socket behind for a minute
// after every probe: ten thousand checks a second would hold hundreds of
// thousands of them and run out of ephemeral ports. HAProxy closes its
// checks the same way.
func closeProbeConn(conn *net.TCPConn) {
	_ = conn.SetLinger(0)
	_ = conn.Close()
}
