package checker

import (
	"context"
	"net"
	"time"
)

// tcpProbe succeeds when a TCP connection is established within the
// connect timeout.
type tcpProbe struct {
	dialer  *net.Dialer
	address string
	timeout time.Duration
}

func newTCPProbe(s Spec) *tcpProbe {
	return &tcpProbe{dialer: newDialer(s), address: s.Address, timeout: s.ConnectTimeout}
}

func (p *tcpProbe) probe(ctx context.Context) Result {
	start := time.Now()
	conn, err := p.dialer.DialContext(ctx, "tcp", p.address)
	end := time.Now()
	r := Result{At: end, Phases: Phases{Total: end.Sub(start)}}
	if err != nil {
		r.Reason, r.Message = connectFailure(err, p.timeout)
		return r
	}
	closeProbeConn(conn.(*net.TCPConn))
	r.Phases.Connect = r.Phases.Total
	r.OK, r.Reason, r.Message = true, ReasonOK, "connected"
	return r
}
