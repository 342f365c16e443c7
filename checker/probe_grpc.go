package checker

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// grpcProbe asks the standard gRPC health service (grpc.health.v1.Health/
// Check) on a fresh connection; SERVING is healthy. It dials the TCP
// connection itself, as the http probe does, so that the connect phase
// and its failures are the same for both, and hands that one connection to
// a grpc-go client made for this probe alone: a client kept from probe to
// probe would reuse its connection and hide a listener that stopped
// accepting.
type grpcProbe struct {
	dialer          *net.Dialer
	address         string
	service         string
	opts            []grpc.DialOption // shared by every probe of the check
	tls             credentials.TransportCredentials
	responseTimeout time.Duration
}

// errOneConnection is what the client gets if it wants a second connection
// within one probe: the probe has one, and its loss is a failure.
var errOneConnection = errors.New("a probe uses one connection")

func newGRPCProbe(s Spec, opts Options) *grpcProbe {
	p := &grpcProbe{
		dialer:          newDialer(s),
		address:         s.Address,
		service:         strings.TrimPrefix(s.Path, "/"),
		responseTimeout: s.ResponseTimeout,
	}
	p.opts = []grpc.DialOption{
		grpc.WithNoProxy(),
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableRetry(),
		grpc.WithUserAgent("healthfailover"),
		// The handshake never outlasts the probe.
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: s.ResponseTimeout, Backoff: backoff.DefaultConfig}),
		// A probe's exchange is a few hundred bytes: grpc's 32 KiB
		// buffers each way would be most of what a probe allocates.
		grpc.WithReadBufferSize(4096),
		grpc.WithWriteBufferSize(4096),
	}
	if host, port, err := net.SplitHostPort(s.Address); err == nil && s.Host != "" {
		// grpc-go takes the TLS server name from the authority.
		p.opts = append(p.opts, grpc.WithAuthority(hostHeader(s, host, port)))
	}
	if s.Kind == GRPCS {
		p.tls = credentials.NewTLS(&tls.Config{
			InsecureSkipVerify: !s.TLSVerify, // as for https
			RootCAs:            opts.roots,
		})
	} else {
		p.opts = append(p.opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	return p
}

func (p *grpcProbe) probe(ctx context.Context) (r Result) {
	start := time.Now()
	defer func() {
		r.At = time.Now()
		r.Phases.Total = r.At.Sub(start)
	}()

	tcp, connected := connect(ctx, p.dialer, p.address, start, &r)
	if tcp == nil {
		return r
	}
	// grpc closes the connection; a reset, not a FIN (see closeProbeConn).
	_ = tcp.SetLinger(0)

	// The TLS handshake and the RPC share the response timeout, as the
	// handshake and the response of an http probe do.
	rpcCtx, cancel := context.WithDeadline(ctx, connected.Add(p.responseTimeout))
	defer cancel()

	var handed atomic.Pointer[net.TCPConn]
	handed.Store(tcp)
	defer func() {
		if c := handed.Swap(nil); c != nil {
			_ = c.Close() // the client never asked for it
		}
	}()
	hs := &handshake{}
	opts := append(p.opts[:len(p.opts):len(p.opts)], grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
		if c := handed.Swap(nil); c != nil {
			return c, nil
		}
		return nil, errOneConnection
	}))
	if p.tls != nil {
		opts = append(opts, grpc.WithTransportCredentials(timedTLS{p.tls, hs}))
	}
	// passthrough: the address is not resolved, the dialer above ignores it.
	cc, err := grpc.NewClient("passthrough:///"+p.address, opts...)
	if err != nil {
		r.Reason, r.Message = ReasonGRPCError, "grpc: "+err.Error()
		return r
	}
	defer cc.Close()

	called := time.Now()
	resp, err := healthpb.NewHealthClient(cc).Check(rpcCtx, &healthpb.HealthCheckRequest{Service: p.service})
	answered := time.Now()
	hsTook, hsEnd, hsErr := hs.result()
	if p.tls != nil {
		r.Phases.TLSHandshake = hsTook
	}
	if answeredByServer(err) {
		r.Phases.FirstByte = answered.Sub(later(called, hsEnd))
	}
	switch {
	case hsErr != nil:
		r.Reason, r.Message = tlsFailure(hsErr, p.responseTimeout)
	case err != nil && (rpcCtx.Err() != nil || status.Code(err) == codes.DeadlineExceeded):
		r.Reason, r.Message = ReasonTimeout, noResponse(p.responseTimeout)
		if p.tls != nil && hsEnd.IsZero() {
			r.Message += " (TLS handshake)"
		}
	case err != nil:
		r.Reason, r.Message = rpcFailure(err)
	default:
		r.Reason, r.Message = servingStatus(resp.GetStatus())
		r.OK = r.Reason == ReasonOK
	}
	return r
}

// servingStatus judges the health service's answer.
func servingStatus(s healthpb.HealthCheckResponse_ServingStatus) (Reason, string) {
	msg := "grpc: " + s.String()
	switch s {
	case healthpb.HealthCheckResponse_SERVING:
		return ReasonOK, msg
	case healthpb.HealthCheckResponse_NOT_SERVING:
		return ReasonGRPCNotServing, msg
	case healthpb.HealthCheckResponse_SERVICE_UNKNOWN:
		return ReasonGRPCServiceUnknown, msg
	}
	return ReasonGRPCUnknown, msg // UNKNOWN, and any value added later
}

// rpcFailure describes a failed Check: NotFound is the protocol's answer
// for a service the server does not know; anything else, a server without
// the health service included, is an error.
func rpcFailure(err error) (Reason, string) {
	st := status.Convert(err)
	detail := st.Message()
	// grpc-go's "connection error: desc = \"error reading server preface: EOF\""
	if rest, ok := strings.CutPrefix(detail, "connection error: desc = "); ok {
		if unquoted, err := strconv.Unquote(rest); err == nil {
			rest = unquoted
		}
		detail = rest
	}
	msg := st.Code().String() + ": " + detail
	if st.Code() == codes.NotFound {
		return ReasonGRPCServiceUnknown, "grpc: SERVICE_UNKNOWN (" + msg + ")"
	}
	return ReasonGRPCError, "grpc: " + msg
}

// answeredByServer reports whether the server answered the RPC, rather
// than the connection failing or the time running out.
func answeredByServer(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return false
	}
	return true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// handshake is what timedTLS saw of one probe's TLS handshake; grpc runs
// it on a goroutine of its own.
type handshake struct {
	mu   sync.Mutex
	took time.Duration
	end  time.Time // zero until it finished
	err  error
}

func (h *handshake) result() (time.Duration, time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.took, h.end, h.err
}

// timedTLS is grpc-go's TLS credentials, timing the handshake and keeping
// its error, which grpc would otherwise fold into an Unavailable.
type timedTLS struct {
	credentials.TransportCredentials
	hs *handshake
}

func (t timedTLS) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	start := time.Now()
	conn, info, err := t.TransportCredentials.ClientHandshake(ctx, authority, raw)
	end := time.Now()
	t.hs.mu.Lock()
	switch {
	case err == nil:
		t.hs.took, t.hs.end = end.Sub(start), end
	case ctx.Err() == nil:
		// A handshake cut short by the client closing is the RPC's
		// timeout, told as such; anything else is the server's.
		t.hs.err = err
	}
	t.hs.mu.Unlock()
	return conn, info, err
}

func (t timedTLS) Clone() credentials.TransportCredentials {
	return timedTLS{t.TransportCredentials.Clone(), t.hs}
}
