package test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A grpc check against grpc-go's own health server fails over and back
// with the status the server gives its service, and when it stops
// listening; the status endpoint and the metrics name the gRPC reason.
// With fast_interval, the streak after the first failure is probed fast
// apart: failure_threshold 3 at an interval of 4 s fails over well before
// the two further intervals it would take without.
func TestGRPCCheckFailover(t *testing.T) {
	g := fakebackend.NewGRPC(t, fakebackend.GRPCOptions{})
	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_SERVING)
	metricsAddr, statusAddr := freeAddr(t), freeAddr(t)
	_, udp, _ := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
		prometheus %s
		healthfailover {
			check cart grpc://%s/shop.v1.Cart {
				interval 4s
				fast_interval 100ms
				response_timeout 1s
				failure_threshold 3
			}
			record cart.example.org A {
				primary 127.0.0.1 check cart
				secondary 127.0.0.2
			}
			status %s
		}
	}`, metricsAddr, g.Addr(), statusAddr))
	answers := func(want string) func() bool {
		return func() bool {
			ips, _ := addresses(t, "udp", udp, "cart.example.org.")
			return sameAnswer(ips, want)
		}
	}
	eventually(t, 3*time.Second, "the primary answers while SERVING", answers("127.0.0.1"))

	// Without fast_interval, three failures 4 s apart take at least 8 s
	// after the first; with it, the first comes within 4 s and the other
	// two 100 ms apart.
	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
	took := eventually(t, 7*time.Second, "failover after NOT_SERVING, at the fast interval", answers("127.0.0.2"))
	t.Logf("failover after NOT_SERVING took %s", took)
	c, ok := findCheck(readStatus(t, statusAddr), "cart")
	if !ok || c.Healthy || c.Last == nil || c.Last.Reason != "grpc_not_serving" || c.Last.Message != "grpc: NOT_SERVING" {
		t.Errorf("status of the check: %+v %+v", c, c.Last)
	}
	_, text := httpGet(t, "http://"+metricsAddr+"/metrics")
	if !strings.Contains(text, `coredns_healthfailover_probes_total{block="dns://example.org.:0",check="cart",reason="grpc_not_serving"}`) {
		t.Errorf("metrics lack the probes by reason grpc_not_serving")
	}

	g.SetStatus("shop.v1.Cart", healthpb.HealthCheckResponse_SERVING)
	eventually(t, 7*time.Second, "failback after SERVING", answers("127.0.0.1"))

	if err := g.SetListening(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 7*time.Second, "failover when the server stops listening", answers("127.0.0.2"))
	if c, _ := findCheck(readStatus(t, statusAddr), "cart"); c.Last == nil || c.Last.Reason != "connect_refused" {
		t.Errorf("last result after the server stopped: %+v", c.Last)
	}
}

// method, header and expect as a backend sees them: a check that sends
// HEAD with the right token and expects 204 keeps its member in the
// answer; one with the wrong token, or expecting only 200, does not; and
// the first fails over when the backend answers 503.
func TestHTTPOptionsCheck(t *testing.T) {
	var status atomic.Int64
	status.Store(http.StatusNoContent)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodHead:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case r.Header.Get("X-Health-Token") != "s3cret":
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(int(status.Load()))
		}
	}))
	t.Cleanup(backend.Close)
	addr := backend.Listener.Addr().String()
	check := func(name, opts string) string {
		return fmt.Sprintf(`check %s http://%s/health {
				interval 100ms
				failure_threshold 2
				%s
			}
			record %s.example.org A {
				primary 127.0.0.1 check %s
				secondary 127.0.0.2
			}
			`, name, addr, opts, name, name)
	}
	_, udp, _ := startCoreDNS(t, `example.org:0 {
		healthfailover {
			`+check("right", "method HEAD\n header X-Health-Token s3cret\n expect 204 300-302")+
		check("token", "method HEAD\n header X-Health-Token nope\n expect 204")+
		check("get", "header X-Health-Token s3cret\n expect 204")+
		check("strict", "method HEAD\n header X-Health-Token s3cret\n expect 200")+`
		}
	}`)
	answer := func(name string) []string {
		ips, _ := addresses(t, "udp", udp, name+".example.org.")
		return ips
	}
	eventually(t, 3*time.Second, "only the check with the right method, header and statuses passes", func() bool {
		return sameAnswer(answer("right"), "127.0.0.1") && sameAnswer(answer("token"), "127.0.0.2") &&
			sameAnswer(answer("get"), "127.0.0.2") && sameAnswer(answer("strict"), "127.0.0.2")
	})
	status.Store(http.StatusServiceUnavailable)
	eventually(t, 3*time.Second, "failover on a status outside expect", func() bool { return sameAnswer(answer("right"), "127.0.0.2") })
	status.Store(http.StatusFound) // in 300-302, and not followed
	eventually(t, 3*time.Second, "failback on a status in an expected range", func() bool { return sameAnswer(answer("right"), "127.0.0.1") })
}
