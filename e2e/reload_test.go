package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReload: a reload (SIGUSR1, as the reload plugin or an operator sends)
// of an unchanged Corefile keeps every check's health, so the name never
// flaps back to a dead primary, and leaves no goroutine of the old
// configuration running.
func TestReload(t *testing.T) {
	requireE2E(t)
	p, s := "127.0.0.61", "127.0.0.62"
	port := freeSharedPort(t, p, s)
	wp := startWebServer(t, "PRIMARY", p, port)
	ws := startWebServer(t, "SECONDARY", s, port)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	c := startCoreDNS(t, "prometheus "+metricsAddr, fastCheck("p", wp)+fastCheck("s", ws)+fmt.Sprintf(`
        record www.example.org A {
            primary %s check p
            secondary %s check s
        }`, p, s), true)
	const name = "www.example.org"

	since := time.Now()
	wp.stop(t)
	waitAddrs(t, c, name, since, 10*time.Second, s)
	before := goroutines(t, metricsAddr)

	const reloads = 5
	for i := range reloads {
		logged := strings.Count(c.Output(), "Reloading complete")
		if err := c.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		// Through the reload and a while after it, every answer is the
		// secondary: a new configuration that started from "healthy"
		// would hand out the dead primary until its first probe.
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(c.Output(), "Reloading complete") == logged {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d: no \"Reloading complete\" in CoreDNS's log within 10s", i+1)
			}
			expectStable(t, c, name, s)
			time.Sleep(20 * time.Millisecond)
		}
		settle := time.Now().Add(2 * fastInterval)
		for time.Now().Before(settle) {
			expectStable(t, c, name, s)
			time.Sleep(20 * time.Millisecond)
		}
	}
	expectAddrs(t, c, name, s)

	// Each configuration runs a goroutine per check; leaked ones would add
	// at least 2 per reload. Allow a little slack for connections in flight.
	var after int
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = goroutines(t, metricsAddr)
		if after <= before+3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	report(t, "goroutines before %d reloads: %d, after: %d", reloads, before, after)
	if after > before+3 {
		t.Errorf("goroutines grew from %d to %d over %d reloads: the old configurations' checks leak", before, after, reloads)
	}
}

// expectStable fails the test at once if the name answers anything but want.
func expectStable(t *testing.T, c *corednsProc, name, want string) {
	t.Helper()
	r, err := dnsQuery(c.dnsAddr, name, "udp")
	if err != nil {
		// The server may be between listeners for an instant; a timeout
		// is not a wrong answer.
		return
	}
	if r.rcode != "NOERROR" || len(r.addrs) != 1 || r.addrs[0] != want {
		t.Fatalf("%s during a reload: %s, want only %s", name, r, want)
	}
}

// goroutines reads go_goroutines from CoreDNS's Prometheus endpoint.
func goroutines(t *testing.T, addr string) int {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("go_goroutines %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("no go_goroutines in %s/metrics (%v)", addr, sc.Err())
	return 0
}
