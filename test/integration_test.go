package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/miekg/dns"
)

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
	}`, east.URL())
	_, udp, tcp := startCoreDNS(t, corefile)

	for _, network := range []string{"udp", "tcp"} {
		server := map[string]string{"udp": udp, "tcp": tcp}[network]
		t.Run(network, func(t *testing.T) {
			eventually(t, 3*time.Second, "primary answers", func() bool {
				ips, _ := addresses(t, network, server, "www.example.org.")
				return sameAnswer(ips, "127.0.0.1")
			})
			east.SetUp(false)
			took := eventually(t, 3*time.Second, "failover to the secondary", func() bool {
				ips, _ := addresses(t, network, server, "www.example.org.")
				return sameAnswer(ips, "127.0.0.2")
			})
			t.Logf("failover took %s", took)
			east.SetUp(true)
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
	closed := fakebackend.NewClosedPort(t) // connection refused

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
	}`, a.URL(), b.URL(), closed)
	_, udp, _ := startCoreDNS(t, corefile)
	eventually(t, 3*time.Second, "the two healthy members answer", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.1", "127.0.0.2")
	})
	b.SetUp(false)
	eventually(t, 3*time.Second, "the dead member drops out", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.1")
	})
	// NXDOMAIN for an undefined name, over the real server.
	if _, rcode := addresses(t, "udp", udp, "nope.example.org."); rcode != dns.RcodeNameError {
		t.Errorf("undefined name: rcode %s, want NXDOMAIN", dns.RcodeToString[rcode])
	}
}
