package checker

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// grpcCert borrows httptest's self-signed certificate (example.com,
// 127.0.0.1, ::1) and returns a server config that remembers the SNI it
// was sent, and the roots that trust it.
func grpcCert(t *testing.T) (*tls.Config, *x509.CertPool, *atomic.Value) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	cert := srv.TLS.Certificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	srv.Close()
	sni := &atomic.Value{}
	sni.Store("")
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		sni.Store(hello.ServerName)
		return nil, nil
	}}
	return cfg, roots, sni
}

// rpcSpec is a gRPC check with a response timeout that a loaded machine
// under -race does not run out of (the first TLS handshake loads the
// system's roots); quick's short one is for the tests of timeouts.
func rpcSpec(kind Kind, addr string) Spec {
	s := quick(kind, addr)
	s.ResponseTimeout = 2 * time.Second
	return s
}

// The health service's every answer, switched at run time on a real grpc-go
// health server, for the server as a whole and for a named service.
func TestGRPCServingStatuses(t *testing.T) {
	g := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{})
	s := rpcSpec(GRPC, g.Addr())

	r := probeOnce(t, s, Options{})
	wantResult(t, r, true, ReasonOK, "grpc: SERVING")
	if r.Status != 0 || r.Phases.Connect <= 0 || r.Phases.FirstByte <= 0 || r.Phases.TLSHandshake != 0 ||
		r.Phases.Total < r.Phases.Connect+r.Phases.FirstByte {
		t.Errorf("status %d, phases %+v", r.Status, r.Phases)
	}
	for _, c := range []struct {
		status healthpb.HealthCheckResponse_ServingStatus
		reason Reason
		msg    string
	}{
		{healthpb.HealthCheckResponse_NOT_SERVING, ReasonGRPCNotServing, "grpc: NOT_SERVING"},
		{healthpb.HealthCheckResponse_SERVICE_UNKNOWN, ReasonGRPCServiceUnknown, "grpc: SERVICE_UNKNOWN"},
		{healthpb.HealthCheckResponse_UNKNOWN, ReasonGRPCUnknown, "grpc: UNKNOWN"},
		{healthpb.HealthCheckResponse_SERVING, ReasonOK, "grpc: SERVING"},
	} {
		g.SetStatus("", c.status)
		wantResult(t, probeOnce(t, s, Options{}), c.reason == ReasonOK, c.reason, c.msg)
	}

	// A service the server does not know: the protocol's NotFound.
	s.Path = "/shop.v1.Cart"
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonGRPCServiceUnknown, "grpc: SERVICE_UNKNOWN (NotFound: unknown service)")
	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonGRPCNotServing, "grpc: NOT_SERVING")
	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_SERVING)
	g.SetStatus("", healthpb.HealthCheckResponse_NOT_SERVING) // the server's own status is not the service's
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "grpc: SERVING")
}

// Each probe has a connection of its own, so a server that stops listening
// is refused at once, and one that listens again is healthy again.
func TestGRPCFreshConnectionPerProbe(t *testing.T) {
	g := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{})
	s := rpcSpec(GRPC, g.Addr())
	for range 3 {
		wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "grpc: SERVING")
	}
	if n := g.Accepted(); n != 3 {
		t.Errorf("3 probes, %d connections accepted", n)
	}
	if err := g.SetListening(false); err != nil {
		t.Fatal(err)
	}
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonRefused, "connect: connection refused")
	if err := g.SetListening(true); err != nil {
		t.Fatal(err)
	}
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "grpc: SERVING")
}

func TestGRPCFailures(t *testing.T) {
	noHealth := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{NoHealth: true})
	wantResult(t, probeOnce(t, rpcSpec(GRPC, noHealth.Addr()), Options{}), false, ReasonGRPCError,
		"grpc: Unimplemented: unknown service grpc.health.v1.Health")

	// Accepts and never answers: no answer within the response timeout,
	// during the TLS handshake for grpcs.
	silent := silentAddr(t)
	wantResult(t, probeOnce(t, quick(GRPC, silent), Options{}), false, ReasonTimeout, "no response within 150ms")
	wantResult(t, probeOnce(t, quick(GRPCS, silent), Options{}), false, ReasonTimeout, "no response within 150ms (TLS handshake)")

	// Not gRPC: an HTTP/1.1 server.
	web := newFlipServer(t, 200, "hello")
	r := probeOnce(t, rpcSpec(GRPC, web.addr()), Options{})
	if r.OK || r.Reason != ReasonGRPCError || !strings.HasPrefix(r.Message, "grpc: Unavailable: ") {
		t.Errorf("against HTTP/1.1: %v %s %q", r.OK, r.Reason, r.Message)
	}

	for _, kind := range []Kind{GRPC, GRPCS} {
		wantResult(t, probeOnce(t, rpcSpec(kind, closedAddr(t)), Options{}), false, ReasonRefused, "connect: connection refused")
	}
}

func TestGRPCS(t *testing.T) {
	cfg, roots, sni := grpcCert(t)
	g := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{TLS: cfg})
	addr := g.Addr()
	_, port, _ := net.SplitHostPort(addr)
	s := rpcSpec(GRPCS, addr)

	r := probeOnce(t, s, Options{})
	wantResult(t, r, true, ReasonOK, "grpc: SERVING")
	if r.Phases.Connect <= 0 || r.Phases.TLSHandshake <= 0 || r.Phases.FirstByte <= 0 {
		t.Errorf("phases %+v", r.Phases)
	}
	if sni.Load() != "" || g.Authority() != addr {
		t.Errorf("to an IP: SNI %q, authority %q; want none and %q", sni.Load(), g.Authority(), addr)
	}

	// host sets the authority and the TLS server name.
	s.Host = "example.com"
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "grpc: SERVING")
	if sni.Load() != "example.com" || g.Authority() != "example.com:"+port {
		t.Errorf("SNI %q, authority %q", sni.Load(), g.Authority())
	}

	// Self-signed: verification fails against the system's roots, passes
	// against the right ones, and then the name decides.
	s.TLSVerify = true
	r = probeOnce(t, s, Options{})
	if r.OK || r.Reason != ReasonTLS || !strings.HasPrefix(r.Message, "tls: ") || !strings.Contains(r.Message, "certificate") {
		t.Errorf("verified against system roots: %v %s %q", r.OK, r.Reason, r.Message)
	}
	wantResult(t, probeOnce(t, s, Options{roots: roots}), true, ReasonOK, "grpc: SERVING")
	s.Host = "wrong.example.net"
	r = probeOnce(t, s, Options{roots: roots})
	if r.OK || r.Reason != ReasonTLS || !strings.Contains(r.Message, "wrong.example.net") {
		t.Errorf("wrong name: %v %s %q", r.OK, r.Reason, r.Message)
	}

	// grpcs against plain gRPC, and plain gRPC against grpcs.
	plain := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{})
	r = probeOnce(t, rpcSpec(GRPCS, plain.Addr()), Options{})
	if r.OK || r.Reason != ReasonTLS || !strings.HasPrefix(r.Message, "tls: ") {
		t.Errorf("grpcs to plain: %v %s %q", r.OK, r.Reason, r.Message)
	}
	r = probeOnce(t, rpcSpec(GRPC, addr), Options{})
	if r.OK || r.Reason != ReasonGRPCError {
		t.Errorf("grpc to grpcs: %v %s %q", r.OK, r.Reason, r.Message)
	}
}

func TestGRPCIgnoresProxyEnvironment(t *testing.T) {
	proxy := "http://" + closedAddr(t)
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "GRPC_PROXY"} {
		t.Setenv(v, proxy)
	}
	t.Setenv("NO_PROXY", "")
	g := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{})
	wantResult(t, probeOnce(t, rpcSpec(GRPC, g.Addr()), Options{}), true, ReasonOK, "grpc: SERVING")
}

// A gRPC check in a running Checker fails over and back with the health
// server's status, and leaves no goroutine behind.
func TestGRPCCheckFailsOverAndBack(t *testing.T) {
	g := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{})
	s := fastHTTP("rpc", g.Addr())
	s.Kind, s.Path = GRPC, "/shop.v1.Cart"
	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_SERVING)
	rec := &transitions{}
	c, err := New([]Spec{s}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.Subscribe(rec.add)
	t.Cleanup(func() { c.Stop(); noLeak(t) })
	c.Start(nil)
	if !c.Healthy("rpc") {
		t.Fatal("unhealthy at start")
	}
	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, 5*time.Second, func() bool { return !c.Healthy("rpc") }, "unhealthy after NOT_SERVING")
	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_SERVING)
	eventually(t, 5*time.Second, func() bool { return c.Healthy("rpc") }, "healthy again")
	wantTransitions(t, rec.get(),
		"rpc true->false grpc_not_serving: grpc: NOT_SERVING after 2 consecutive failures",
		"rpc false->true ok: grpc: SERVING after 2 consecutive successes")
}
