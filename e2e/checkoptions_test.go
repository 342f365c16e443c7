package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startNginxWith is startWebServer with other locations in place of its
// /health: the checks' options as a real web server judges requests.
func startNginxWith(t *testing.T, name, ip string, port int, locations string) *webServer {
	t.Helper()
	prefix, err := os.MkdirTemp("", "e2e-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &webServer{name: name, ip: ip, port: port, prefix: prefix, conf: filepath.Join(prefix, "nginx.conf")}
	const health = `location = /health { return 200 "OK\n"; }`
	conf := w.config()
	if !strings.Contains(conf, health) {
		t.Fatalf("the nginx configuration has no %q to replace:\n%s", health, conf)
	}
	if err := os.WriteFile(w.conf, []byte(strings.Replace(conf, health, locations, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.kill(t)
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Logf("nginx %s error.log:\n%s", name, errLog)
		}
		os.RemoveAll(prefix)
	})
	w.start(t)
	return w
}

// TestHTTPOptionsWithNginx: nginx answers /health with 204 only to a HEAD
// that carries the right token, and /moved with a redirect. The check that
// sends HEAD with the token and expects 204 passes; the wrong token, and
// expect 200 against the redirect (healthy by default, not followed), fail.
// Stopping nginx fails the good one over; starting it fails back.
func TestHTTPOptionsWithNginx(t *testing.T) {
	requireE2E(t)
	const ip = "127.0.0.41"
	port := freeSharedPort(t, ip)
	web := startNginxWith(t, "options", ip, port, `
        location = /health {
            if ($request_method != HEAD) { return 405; }
            if ($http_x_health_token != "s3cret") { return 403; }
            return 204;
        }
        location = /moved { return 302 /health; }`)
	record := func(name string) string {
		return fmt.Sprintf(`
        record %s.example.org A {
            primary %s check %s
            secondary 127.0.0.2
        }`, name, ip, name)
	}
	c := startCoreDNS(t, "", fmt.Sprintf(`
        check right http://%[1]s/health {
            interval 1s
            fast_interval 100ms
            failure_threshold 2
            method HEAD
            header X-Health-Token s3cret
            expect 204
        }
        check token http://%[1]s/health {
            method HEAD
            header X-Health-Token "not it"
            expect 204
        }
        check moved http://%[1]s/moved {
            expect 200
        }`, web.addr())+record("right")+record("token")+record("moved"), true)

	expectAddrs(t, c, "right.example.org", ip)
	expectAddrs(t, c, "token.example.org", "127.0.0.2")
	expectAddrs(t, c, "moved.example.org", "127.0.0.2")
	c.waitLog(t, "check token: healthy -> unhealthy (status 403 on the first probe)", 2*time.Second)
	c.waitLog(t, "check moved: healthy -> unhealthy (status 302 on the first probe)", 2*time.Second)

	stopped := time.Now()
	web.stop(t)
	measured(t, "failover after stopping nginx (interval 1s, fast_interval 100ms, threshold 2)",
		waitAddrs(t, c, "right.example.org", stopped, 10*time.Second, "127.0.0.2"), 1100*time.Millisecond+time.Second)
	started := time.Now()
	web.start(t)
	measured(t, "failback after starting nginx again",
		waitAddrs(t, c, "right.example.org", started, 10*time.Second, ip), 1100*time.Millisecond+time.Second)
	c.waitLog(t, "check right: unhealthy -> healthy (status 204 after 2 consecutive successes)", 2*time.Second)
}

// TestGRPCChecks: CoreDNS probes gRPC servers in this test process, running
// grpc-go's health service, over plain text and over TLS. The service's
// status moves its record between primary and secondary; a server that
// stops listening fails over too.
func TestGRPCChecks(t *testing.T) {
	requireE2E(t)
	plain := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{})
	plain.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_SERVING)
	// httptest's self-signed certificate: tls_verify is off, as by default.
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS()
	cert := certSrv.TLS.Certificates[0]
	certSrv.Close()
	secure := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})

	c := startCoreDNS(t, "", fmt.Sprintf(`
        check cart grpc://%s/shop.v1.Cart {
            interval 1s
            fast_interval 100ms
            failure_threshold 3
        }
        check secure grpcs://%s {
            host api.example.org
            interval 1s
            failure_threshold 2
        }
        record cart.example.org A {
            primary 127.0.0.1 check cart
            secondary 127.0.0.2
        }
        record api.example.org A {
            primary 127.0.0.3 check secure
            secondary 127.0.0.4
        }`, plain.Addr(), secure.Addr()), true)
	expectAddrs(t, c, "cart.example.org", "127.0.0.1")
	expectAddrs(t, c, "api.example.org", "127.0.0.3")
	if got := secure.Authority(); !strings.HasPrefix(got, "api.example.org:") {
		t.Errorf("grpcs check sent authority %q, want api.example.org:PORT", got)
	}

	at := time.Now()
	plain.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
	measured(t, "failover after NOT_SERVING (interval 1s, fast_interval 100ms, threshold 3)",
		waitAddrs(t, c, "cart.example.org", at, 10*time.Second, "127.0.0.2"), 1200*time.Millisecond+time.Second)
	c.waitLog(t, "check cart: healthy -> unhealthy (grpc: NOT_SERVING after 3 consecutive failures)", 2*time.Second)
	at = time.Now()
	plain.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_SERVING)
	waitAddrs(t, c, "cart.example.org", at, 10*time.Second, "127.0.0.1")

	at = time.Now()
	secure.SetStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	waitAddrs(t, c, "api.example.org", at, 10*time.Second, "127.0.0.4")
	secure.SetStatus("", healthpb.HealthCheckResponse_SERVING)
	waitAddrs(t, c, "api.example.org", time.Now(), 10*time.Second, "127.0.0.3")

	at = time.Now()
	if err := plain.SetListening(false); err != nil {
		t.Fatal(err)
	}
	waitAddrs(t, c, "cart.example.org", at, 10*time.Second, "127.0.0.2")
	c.waitLog(t, "check cart: healthy -> unhealthy (connect: connection refused after 3 consecutive failures)", 2*time.Second)
}
