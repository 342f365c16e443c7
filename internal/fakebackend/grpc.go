package fakebackend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// GRPCOptions describe a gRPC backend.
type GRPCOptions struct {
	IP  string      // a loopback address to listen on; default 127.0.0.1
	TLS *tls.Config // serves grpcs when set
	// NoHealth leaves the health service out: Check is Unimplemented.
	NoHealth bool
}

// GRPC is a gRPC server on a loopback address with grpc-go's own health
// service (google.golang.org/grpc/health), whose answers a test switches
// with SetStatus. The server as a whole ("") starts SERVING.
type GRPC struct {
	opts     GRPCOptions
	addr     string // the same across a stop and a start
	health   *health.Server
	accepted atomic.Int64
	calls    atomic.Int64
	// authority is the :authority of the last call.
	authority atomic.Value

	mu     sync.Mutex
	srv    *grpc.Server // nil while stopped
	served chan struct{}
	closed bool
}

// StartGRPC starts a gRPC backend that listens.
func StartGRPC(o GRPCOptions) (*GRPC, error) {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if err := loopbackOnly(o.IP); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.IP, "0"))
	if err != nil {
		return nil, err
	}
	g := &GRPC{opts: o, addr: ln.Addr().String(), health: health.NewServer()}
	g.authority.Store("")
	g.serve(ln)
	return g, nil
}

func (g *GRPC) serve(ln net.Listener) {
	var opts []grpc.ServerOption
	if g.opts.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(g.opts.TLS)))
	}
	opts = append(opts, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		g.calls.Add(1)
		if md, ok := metadata.FromIncomingContext(ctx); ok && len(md[":authority"]) > 0 {
			g.authority.Store(md[":authority"][0])
		}
		return next(ctx, req)
	}))
	srv := grpc.NewServer(opts...)
	if !g.opts.NoHealth {
		healthpb.RegisterHealthServer(srv, g.health)
	}
	served := make(chan struct{})
	g.srv, g.served = srv, served
	go func() {
		defer close(served)
		_ = srv.Serve(countingListener{ln, &g.accepted})
	}()
}

// Addr is HOST:PORT.
func (g *GRPC) Addr() string { return g.addr }

// SetStatus sets what Check answers for a service ("" for the server).
func (g *GRPC) SetStatus(service string, s healthpb.HealthCheckResponse_ServingStatus) {
	g.health.SetServingStatus(service, s)
}

// Accepted is how many connections the server has accepted.
func (g *GRPC) Accepted() int64 { return g.accepted.Load() }

// Calls is how many RPCs it has been sent.
func (g *GRPC) Calls() int64 { return g.calls.Load() }

// Authority is the :authority of the last RPC.
func (g *GRPC) Authority() string { return g.authority.Load().(string) }

// SetListening stops the server, closing its listener and every
// connection (connects are then refused), or starts it again on the same
// address, retrying for a second while the port is not free yet. The
// health statuses are kept.
func (g *GRPC) SetListening(on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("fakebackend: the gRPC backend is closed")
	}
	if !on {
		g.stopLocked()
		return nil
	}
	if g.srv != nil {
		return nil
	}
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", g.addr); err == nil {
			g.serve(ln)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("fakebackend: listen again on %s: %w", g.addr, err)
}

func (g *GRPC) stopLocked() {
	if g.srv == nil {
		return
	}
	g.srv.Stop()
	<-g.served
	g.srv, g.served = nil, nil
}

// Close stops the server for good.
func (g *GRPC) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.stopLocked()
}

// NewGRPC starts a gRPC backend for a test.
func NewGRPC(t T, o GRPCOptions) *GRPC {
	t.Helper()
	g, err := StartGRPC(o)
	if err != nil {
		t.Fatalf("fake gRPC backend: %v", err)
	}
	t.Cleanup(g.Close)
	return g
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
