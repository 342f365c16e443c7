package test

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/healthfailover/healthfailover/internal/loopback"
)

// reloadCorefile is the Corefile the reload tests change. It serves on a
// real port, as in production: with port 0 caddy cannot tell an old
// server's listener from the new one's in its hand-over, and an old UDP
// server now and then outlived its instance, which is no plugin's doing.
func reloadCorefile(port int, east string, extra string) string {
	return fmt.Sprintf(`example.org:%d {
		healthfailover {
			check east %s/ {
				interval 100ms
				failure_threshold 2
			}
			record www.example.org A {
				primary 127.0.0.1 check east
				secondary 127.0.0.2
			}
			%s
		}
	}`, port, east, extra)
}

func dnsPort(t *testing.T) int {
	t.Helper()
	port, err := loopback.DNSPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestReloadKeepsHealthOfUnchangedChecks(t *testing.T) {
	logs := captureLog(t)
	east := newBackend(t, "US EAST")
	port := dnsPort(t)
	i, udp, _ := startCoreDNS(t, reloadCorefile(port, east.URL(), ""))
	east.SetUp(false)
	eventually(t, 3*time.Second, "failover", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.2")
	})

	// An unrelated change: the check east is the same, so it stays unhealthy
	// and the record never flips back to the dead primary, not even once.
	i = restart(t, i, reloadCorefile(port, east.URL(), "record new.example.org A {\n primary 127.0.0.9\n}"))
	udp, _ = inprocess.Addrs(i, 0)
	for n := range 50 {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		if !sameAnswer(ips, "127.0.0.2") {
			t.Fatalf("query %d after the reload answered %v: the dead primary came back", n, ips)
		}
	}
	// Health carried over is not a new transition: nothing more is logged.
	if n := strings.Count(logs.String(), "check east: healthy -> unhealthy"); n != 1 {
		t.Errorf("%d transitions to unhealthy logged, want 1 (the reload changed nothing):\n%s", n, logs.String())
	}
	if ips, _ := addresses(t, "udp", udp, "new.example.org."); !sameAnswer(ips, "127.0.0.9") {
		t.Errorf("the reloaded configuration is not serving: new.example.org = %v", ips)
	}
	// Its consecutive history came along too: two successes, not a fresh start, bring it back.
	east.SetUp(true)
	eventually(t, 3*time.Second, "failback after the reload", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.1")
	})
}

func TestRefusedReloadKeepsOldConfiguration(t *testing.T) {
	east := newBackend(t, "US EAST")
	port := dnsPort(t)
	i, udp, _ := startCoreDNS(t, reloadCorefile(port, east.URL(), ""))
	eventually(t, 3*time.Second, "primary", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.1")
	})
	_, err := i.Restart(inprocess.Input(reloadCorefile(port, east.URL(), "record bad.example.org A {\n primary ::1\n}")))
	if err == nil || !strings.Contains(err.Error(), "not an IPv4 address") {
		t.Fatalf("bad reload: error %v, want it refused with the reason", err)
	}
	// The old configuration still serves and still checks.
	east.SetUp(false)
	eventually(t, 3*time.Second, "the old configuration fails over", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.2")
	})
}

func TestReloadLeaksNoGoroutine(t *testing.T) {
	east := newBackend(t, "US EAST")
	port := dnsPort(t)
	corefile := func(extra string) string { return reloadCorefile(port, east.URL(), extra) }
	i, _, _ := startCoreDNS(t, corefile(""))
	// The plugin's goroutines only: under load, caddy's hand-over now and
	// then keeps an old UDP server's goroutines a while after its instance
	// (caddy's and miekg/dns's code, on any plugin), which is no leak of ours.
	settle := func() int {
		runtime.GC()
		return pluginGoroutines()
	}
	i = restart(t, i, corefile("")) // warm up lazily started pools
	before := settle()
	if before == 0 {
		t.Fatal("no goroutine of the plugin counted while it probes: the count could not see a leak")
	}
	const reloads = 100
	for n := range reloads {
		// Alternate between two definitions so checks really are replaced.
		extra := []string{"", "check other " + east.URL() + "/x {\n interval 100ms\n}"}[n%2]
		i = restart(t, i, corefile(extra))
	}
	i = restart(t, i, corefile(""))
	var after int
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = settle()
		if after <= before+2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before %d reloads, %d after:\n%s", before, reloads, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestReloadMovesStatusEndpoint(t *testing.T) {
	east := newBackend(t, "US EAST")
	port := dnsPort(t)
	statusAddr := freeAddr(t)
	status := "status " + statusAddr
	i, _, _ := startCoreDNS(t, reloadCorefile(port, east.URL(), status))
	eventually(t, 3*time.Second, "the status endpoint answers", func() bool {
		code, _ := httpGet(t, "http://"+statusAddr+"/status")
		return code == 200
	})
	// The old instance lets go of the address before the new one takes it.
	i = restart(t, i, reloadCorefile(port, east.URL(), status+"\nrecord new.example.org A {\n primary 127.0.0.9\n}"))
	eventually(t, 3*time.Second, "the new configuration's status", func() bool {
		_, body := httpGet(t, "http://"+statusAddr+"/status")
		return strings.Contains(body, "new.example.org.")
	})
	// A refused reload gives the address back to the old configuration.
	if _, err := i.Restart(inprocess.Input(reloadCorefile(port, east.URL(), status+"\nbogus"))); err == nil {
		t.Fatal("a bad Corefile was accepted")
	}
	eventually(t, 3*time.Second, "the old configuration's status after a refused reload", func() bool {
		_, body := httpGet(t, "http://"+statusAddr+"/status")
		return strings.Contains(body, "new.example.org.")
	})
}

// pluginGoroutines counts the goroutines running code of the plugin, its
// checker or its cluster.
func pluginGoroutines() int {
	buf := make([]byte, 1<<22)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if pluginFrame.MatchString(g) {
			n++
		}
	}
	return n
}

var pluginFrame = regexp.MustCompile(`(?m)^github\.com/healthfailover/healthfailover(/checker|/cluster)?\.`)
