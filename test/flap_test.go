package test

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/miekg/dns"
)

// alternatingBackend answers its requests 200, 503, 200, 503, … (or the
// reverse): a backend that flips on every probe, whatever the timing.
func alternatingBackend(t *testing.T, firstUp bool) *fakebackend.HTTP {
	t.Helper()
	var n atomic.Int64
	return fakebackend.NewHTTP(t, fakebackend.Options{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (n.Add(1)%2 == 1) == firstUp {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})})
}

// TestFlappingBackendDoesNotFlapAnswer: a backend that is up and down on
// alternate probes never reaches three results in a row, so with failure
// and success thresholds of 3 its check keeps the health its first probe
// gave it, and the answer never changes however long the flapping lasts.
func TestFlappingBackendDoesNotFlapAnswer(t *testing.T) {
	const (
		// Results of each kind each check must see while the answers are
		// judged: the backends really flapped under the checks.
		flaps  = 5
		within = 30 * time.Second // only stops a test that is stuck
	)
	up, down := alternatingBackend(t, true), alternatingBackend(t, false)
	statusAddr := freeAddr(t)
	corefile := fmt.Sprintf(`example.org:0 {
		healthfailover {
			check starts-up %s/ {
				interval 100ms
				failure_threshold 3
				success_threshold 3
			}
			check starts-down %s/ {
				interval 100ms
				failure_threshold 3
				success_threshold 3
			}
			record up.example.org A {
				primary 127.0.0.1 check starts-up
				secondary 127.0.0.2
			}
			record down.example.org A {
				primary 127.0.0.3 check starts-down
				secondary 127.0.0.4
			}
			status %s
		}
	}`, up.URL(), down.URL(), statusAddr)
	_, udp, _ := startCoreDNS(t, corefile)

	// The first probe decides health directly (starts-down goes down at
	// once); after it the thresholds hold the health where it is.
	eventually(t, within, "both checks have their first result", func() bool {
		doc := readStatus(t, statusAddr)
		a, _ := findCheck(doc, "starts-up")
		b, _ := findCheck(doc, "starts-down")
		return a.Checked && b.Checked
	})
	want := map[string]string{"up.example.org.": "127.0.0.1", "down.example.org.": "127.0.0.4"}
	startDoc := readStatus(t, statusAddr)

	changes, wrong := map[string]int{}, map[string]int{}
	last := map[string][]string{}
	queries := 0
	var endDoc statusDoc
	eventually(t, within, fmt.Sprintf("%d successes and %d failures of each check", flaps, flaps), func() bool {
		for name, w := range want {
			ips, rcode := addresses(t, "udp", udp, name)
			queries++
			if rcode != dns.RcodeSuccess || !sameAnswer(ips, w) {
				wrong[name]++
				if wrong[name] == 1 {
					t.Errorf("%s while flapping: %s %v, want %s", name, dns.RcodeToString[rcode], ips, w)
				}
			}
			if last[name] != nil && !slices.Equal(last[name], ips) {
				changes[name]++
			}
			last[name] = ips
		}
		endDoc = readStatus(t, statusAddr)
		for _, name := range []string{"starts-up", "starts-down"} {
			a, _ := findCheck(startDoc, name)
			b, _ := findCheck(endDoc, name)
			if b.Successes-a.Successes < flaps || b.Failures-a.Failures < flaps {
				return false
			}
		}
		return true
	})

	for _, name := range []string{"starts-up", "starts-down"} {
		a, _ := findCheck(startDoc, name)
		b, _ := findCheck(endDoc, name)
		t.Logf("check %s: %d successes and %d failures, healthy=%t, %d transitions", name, b.Successes-a.Successes, b.Failures-a.Failures, b.Healthy, b.Transitions)
		if b.Transitions != a.Transitions {
			t.Errorf("check %s changed health %d times while flapping below its thresholds", name, b.Transitions-a.Transitions)
		}
	}
	t.Logf("%d queries; answer changes: %v", queries, changes)
	for name, n := range changes {
		if n > 0 {
			t.Errorf("%s: the answer changed %d times while its backend flapped below the thresholds", name, n)
		}
	}
	for name, n := range wrong {
		t.Errorf("%s: %d of the answers were not %s", name, n, want[name])
	}
}
