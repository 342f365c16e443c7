package test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/healthfailover/healthfailover/internal/inprocess"
)

// freeUDPPort returns a loopback UDP port nothing listens on right now, for
// Corefiles with several server blocks (port 0 would give them one key).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// serverAddr returns the UDP address of the k-th server of an instance.
func serverAddr(t *testing.T, i *caddy.Instance, k int) string {
	t.Helper()
	udp, _ := inprocess.Addrs(i, k)
	if udp == "" {
		t.Fatalf("no server %d", k)
	}
	return udp
}

// twoPortCorefile has the same zone on two ports, each block with its own
// check named east against the same dead backend; only the intervals
// differ, so neither block's check may be taken for the other's.
func twoPortCorefile(p1, p2 int, url string, ttl int) string {
	block := func(port int, interval string) string {
		return fmt.Sprintf(`example.org:%d {
		healthfailover {
			check east %s/ {
				interval %s
				failure_threshold 2
			}
			record www.example.org A {
				ttl %d
				primary 127.0.0.1 check east
				secondary 127.0.0.2
			}
		}
	}
	`, port, url, interval, ttl)
	}
	return block(p1, "100ms") + block(p2, "150ms")
}

// Defect: the hand-over of check state on reload was keyed by the block's
// zones, which drop the port, so two blocks with the same zones took each
// other's checks: after a reload the dead primary answered again until the
// first probe, and every reload logged new transitions.
func TestSameZoneOnTwoPortsKeepsHealthAcrossReload(t *testing.T) {
	logs := captureLog(t)
	east := newBackend(t, "US EAST")
	east.SetUp(false)
	p1, p2 := freeUDPPort(t), freeUDPPort(t)
	i, _, _ := startCoreDNS(t, twoPortCorefile(p1, p2, east.URL(), 30))
	servers := []string{serverAddr(t, i, 0), serverAddr(t, i, 1)}
	for _, s := range servers {
		eventually(t, 3*time.Second, "failover at "+s, func() bool {
			ips, _ := addresses(t, "udp", s, "www.example.org.")
			return sameAnswer(ips, "127.0.0.2")
		})
	}
	before := strings.Count(logs.String(), "check east: healthy -> unhealthy")

	for reload := range 3 {
		next, err := i.Restart(inprocess.Input(twoPortCorefile(p1, p2, east.URL(), 31+reload)))
		if err != nil {
			t.Fatalf("reload %d refused: %v", reload, err)
		}
		i = next
		t.Cleanup(func() { inprocess.Stop(next) })
		for k := range 2 {
			s := serverAddr(t, i, k)
			for n := range 30 {
				if ips, _ := addresses(t, "udp", s, "www.example.org."); !sameAnswer(ips, "127.0.0.2") {
					t.Fatalf("reload %d, server %s, query %d: %v, the dead primary answered again", reload, s, n, ips)
				}
			}
		}
	}
	if after := strings.Count(logs.String(), "check east: healthy -> unhealthy"); after != before {
		t.Errorf("reloads that changed only a ttl logged %d new transitions, want 0:\n%s", after-before, logs.String())
	}
}

// Defect: the same check name in two blocks shared one metric series and
// one log prefix, so the dead one could hide behind the healthy one.
func TestSameCheckNameInTwoBlocksIsTwoSeries(t *testing.T) {
	logs := captureLog(t)
	dead, live := newBackend(t, "dead"), newBackend(t, "live")
	dead.SetUp(false)
	metricsAddr := freeAddr(t)
	p1, p2 := freeUDPPort(t), freeUDPPort(t)
	corefile := fmt.Sprintf(`example.org:%d {
		prometheus %s
		healthfailover {
			check web %s/ { interval 100ms }
			record www.example.org A {
				primary 127.0.0.1 check web
				secondary 127.0.0.2
			}
		}
	}
	example.net:%d {
		healthfailover {
			check web %s/ { interval 100ms }
			record www.example.net A {
				primary 127.0.0.3 check web
				secondary 127.0.0.4
			}
		}
	}`, p1, metricsAddr, dead.URL(), p2, live.URL())
	startCoreDNS(t, corefile)

	org := fmt.Sprintf("dns://example.org.:%d", p1)
	net := fmt.Sprintf("dns://example.net.:%d", p2)
	want := []string{
		fmt.Sprintf(`coredns_healthfailover_check_healthy{block=%q,check="web"} 0`, org),
		fmt.Sprintf(`coredns_healthfailover_check_healthy{block=%q,check="web"} 1`, net),
		fmt.Sprintf(`coredns_healthfailover_record_serving_tier{block=%q,record="www.example.org.",type="A"} 2`, org),
		fmt.Sprintf(`coredns_healthfailover_record_serving_tier{block=%q,record="www.example.net.",type="A"} 1`, net),
		fmt.Sprintf(`coredns_healthfailover_probes_total{block=%q,check="web",reason="bad_status"}`, org),
		fmt.Sprintf(`coredns_healthfailover_probes_total{block=%q,check="web",reason="ok"}`, net),
	}
	var text string
	eventually(t, 3*time.Second, "one series per block", func() bool {
		_, text = httpGet(t, "http://"+metricsAddr+"/metrics")
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	})
	promtoolCheck(t, text)

	// The log says which block's check went down.
	line := org + ": check web: healthy -> unhealthy"
	eventually(t, 2*time.Second, "the transition names its block", func() bool { return strings.Contains(logs.String(), line) })
	if strings.Contains(logs.String(), net+": check web: healthy -> unhealthy") {
		t.Errorf("the healthy block's check was logged down:\n%s", logs.String())
	}
}
