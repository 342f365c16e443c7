package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestActivePassiveFailoverAndFailback: US EAST, the primary, with an HTTP
// health check, and US WEST, the secondary, without one, behind
// www.example.org, each a real nginx. The primary is stopped, the name moves
// to the secondary; it is started again, the name comes back. A client
// fetches the page from whatever address DNS returns, as a browser would.
func TestActivePassiveFailoverAndFailback(t *testing.T) {
	requireE2E(t)
	const (
		eastIP = "127.0.0.11"
		westIP = "127.0.0.12"
		name   = "www.example.org"
		// A dead primary is noticed by failure_threshold probes one
		// interval apart; a second covers the probe and the query path.
		// That is reported; bench/failover-time.sh holds it to a bound.
		interval  = time.Second
		threshold = 2
		expected  = interval*threshold + time.Second
	)
	port := freeSharedPort(t, eastIP, westIP)
	east := startWebServer(t, "US EAST", eastIP, port)
	startWebServer(t, "US WEST", westIP, port)
	pageOf := map[string]string{eastIP: "US EAST", westIP: "US WEST"}

	c := startCoreDNS(t, "", fmt.Sprintf(`
        check east http://%s/health {
            interval %s
            failure_threshold %d
        }
        record www.example.org A {
            primary %s check east
            secondary %s
        }`, east.addr(), interval, threshold, eastIP, westIP), true)

	// Both regions up: the primary answers and its page is US EAST.
	expectAddrs(t, c, name, eastIP)
	expectPages(t, answerOf(t, c, name), port, pageOf)

	// Stop the primary: the name moves to US WEST.
	stopped := time.Now()
	east.stop(t)
	failover := waitAddrs(t, c, name, stopped, 10*time.Second, westIP)
	measured(t, "failover to US WEST after stopping US EAST", failover, expected)
	expectAddrs(t, c, name, westIP)
	expectPages(t, answerOf(t, c, name), port, pageOf)
	if _, err := fetchPage(eastIP, port); err == nil {
		t.Errorf("US EAST still serves a page after it was stopped")
	}
	c.waitLog(t, "check east: healthy -> unhealthy", 2*time.Second)

	// Start it again: the name comes back (success_threshold defaults to
	// failure_threshold, so the same time is expected).
	started := time.Now()
	east.start(t)
	failback := waitAddrs(t, c, name, started, 10*time.Second, eastIP)
	measured(t, "failback to US EAST after starting it again", failback, expected)
	expectAddrs(t, c, name, eastIP)
	expectPages(t, answerOf(t, c, name), port, pageOf)
	c.waitLog(t, "check east: unhealthy -> healthy", 2*time.Second)
}
