package healthfailover

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy"
	coretest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
)

// backend is a real loopback web server whose health flips at run time.
type backend struct {
	*httptest.Server
	status atomic.Int32
}

func newBackend(t *testing.T, body string) *backend {
	t.Helper()
	b := &backend{}
	b.status.Store(http.StatusOK)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(b.status.Load()))
		fmt.Fprint(w, body)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) setUp(up bool) {
	if up {
		b.status.Store(http.StatusOK)
	} else {
		b.status.Store(http.StatusServiceUnavailable)
	}
}

// startCoreDNS runs an in-process CoreDNS on a Corefile and returns its UDP
// and TCP addresses.
func startCoreDNS(t *testing.T, corefile string) (*caddy.Instance, string, string) {
	t.Helper()
	ensureDirective()
	i, udp, tcp, err := coretest.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("could not start CoreDNS: %v", err)
	}
	t.Cleanup(func() { i.Stop() })
	return i, udp, tcp
}

// addresses asks a server for a name's A records.
func addresses(t *testing.T, network, server, name string) ([]string, int) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s over %s: %v", name, network, err)
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips, r.Rcode
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

func sameAnswer(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}

func TestIntegrationFailoverAndFailback(t *testing.T) {
	east := newBackend(t, "US EAST")
	corefile := fmt.Sprintf(`example.org:0 {
		healthfailover {
			check east %s/ {
				interval 100ms
				failure_threshold 2
			}
			record www.example.org A {
				primary 127.0.0.1 check east
				secondary 127.0.0.2
			}
		}
	}`, east.URL)
	_, udp, tcp := startCoreDNS(t, corefile)

	for _, network := range []string{"udp", "tcp"} {
		server := map[string]string{"udp": udp, "tcp": tcp}[network]
		t.Run(network, func(t *testing.T) {
			eventually(t, 3*time.Second, "primary answers", func() bool {
				ips, _ := addresses(t, network, server, "www.example.org.")
				return sameAnswer(ips, "127.0.0.1")
			})
			east.setUp(false)
			took := eventually(t, 3*time.Second, "failover to the secondary", func() bool {
				ips, _ := addresses(t, network, server, "www.example.org.")
				return sameAnswer(ips, "127.0.0.2")
			})
			t.Logf("failover took %s", took)
			east.setUp(true)
			took = eventually(t, 3*time.Second, "failback to the primary", func() bool {
				ips, _ := addresses(t, network, server, "www.example.org.")
				return sameAnswer(ips, "127.0.0.1")
			})
			t.Logf("failback took %s", took)
		})
	}
}

func TestIntegrationActiveActiveAndClosedPort(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	// A port where nothing listens: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	corefile := fmt.Sprintf(`example.org:0 {
		healthfailover {
			check a %s/ {
				interval 100ms
				failure_threshold 1
			}
			check b %s/ {
				interval 100ms
				failure_threshold 1
			}
			check gone tcp://%s {
				interval 100ms
				failure_threshold 1
			}
			record www.example.org A {
				primary 127.0.0.1 check a
				primary 127.0.0.2 check b
				primary 127.0.0.3 check gone
			}
		}
	}`, a.URL, b.URL, closed)
	_, udp, _ := startCoreDNS(t, corefile)
	eventually(t, 3*time.Second, "the two healthy members answer", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.1", "127.0.0.2")
	})
	b.setUp(false)
	eventually(t, 3*time.Second, "the dead member drops out", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.1")
	})
	// NXDOMAIN for an undefined name, over the real server.
	if _, rcode := addresses(t, "udp", udp, "nope.example.org."); rcode != dns.RcodeNameError {
		t.Errorf("undefined name: rcode %s, want NXDOMAIN", dns.RcodeToString[rcode])
	}
}
