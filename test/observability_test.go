package test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/healthfailover/healthfailover/internal/inprocess"
)

func TestObservability(t *testing.T) {
	logs := captureLog(t)
	east := newBackend(t, "US EAST")
	metricsAddr, statusAddr := freeAddr(t), freeAddr(t)
	corefile := fmt.Sprintf(`example.org:0 {
		prometheus %s
		healthfailover {
			check obs-east %s/ {
				interval 100ms
				failure_threshold 2
			}
			check obs-never tcp://%s {
				interval 100ms
				failure_threshold 1
			}
			check obs-both calculated obs-east obs-never {
				healthy_threshold 1
			}
			record obs.example.org A {
				primary 127.0.0.1 check obs-east
				secondary 127.0.0.2
			}
			status %s
		}
	}`, metricsAddr, east.URL(), freeAddr(t), statusAddr)
	_, udp, _ := startCoreDNS(t, corefile)

	eventually(t, 3*time.Second, "the closed port is seen down", func() bool {
		return strings.Contains(logs.String(), "check obs-never: healthy -> unhealthy (connect: connection refused")
	})
	eventually(t, 3*time.Second, "the first probe of obs-east", func() bool {
		_, body := httpGet(t, "http://"+statusAddr+"/status")
		return strings.Count(body, `"checked": true`) == 3 // obs-east, obs-never and obs-both
	})
	east.SetUp(false)
	eventually(t, 3*time.Second, "failover", func() bool {
		ips, _ := addresses(t, "udp", udp, "obs.example.org.")
		return sameAnswer(ips, "127.0.0.2")
	})

	t.Run("transition log", func(t *testing.T) {
		want := "[INFO] plugin/healthfailover: dns://example.org.:0: check obs-east: healthy -> unhealthy (status 503 after 2 consecutive failures)"
		eventually(t, 2*time.Second, "the transition is logged", func() bool { return strings.Contains(logs.String(), want) })
		// One line per transition, nothing per probe.
		if n := strings.Count(logs.String(), "check obs-east:"); n != 1 {
			t.Errorf("%d log lines for check east, want 1:\n%s", n, logs.String())
		}
	})

	t.Run("metrics", func(t *testing.T) {
		var text string
		eventually(t, 3*time.Second, "metrics show the failover", func() bool {
			_, text = httpGet(t, "http://"+metricsAddr+"/metrics")
			return strings.Contains(text, `coredns_healthfailover_check_healthy{block="dns://example.org.:0",check="obs-east"} 0`) &&
				strings.Contains(text, `coredns_healthfailover_record_serving_tier{block="dns://example.org.:0",record="obs.example.org.",type="A"} 2`)
		})
		for _, want := range []string{
			`coredns_healthfailover_check_healthy{block="dns://example.org.:0",check="obs-never"} 0`,
			`coredns_healthfailover_calculated_healthy_children{block="dns://example.org.:0",check="obs-both"} 0`,
			`coredns_healthfailover_transitions_total{block="dns://example.org.:0",check="obs-east",to="unhealthy"}`,
			`coredns_healthfailover_probes_total{block="dns://example.org.:0",check="obs-east",reason="bad_status"}`,
			`coredns_healthfailover_probes_total{block="dns://example.org.:0",check="obs-never",reason="connect_refused"}`,
			`coredns_healthfailover_probe_duration_seconds_bucket{block="dns://example.org.:0",check="obs-east",phase="connect"`,
			`coredns_healthfailover_probe_duration_seconds_bucket{block="dns://example.org.:0",check="obs-east",phase="first_byte"`,
			`coredns_healthfailover_probe_duration_seconds_count{block="dns://example.org.:0",check="obs-east",phase="total"}`,
			`coredns_healthfailover_record_healthy_members{block="dns://example.org.:0",record="obs.example.org.",type="A"} 1`,
			`coredns_healthfailover_answers_total{block="dns://example.org.:0",record="obs.example.org.",server="dns://:0",tier="2",type="A"}`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		promtoolCheck(t, text)
	})

	t.Run("status endpoint", func(t *testing.T) {
		doc := readStatus(t, statusAddr)
		byName := map[string]checkStatus{}
		for _, c := range doc.Checks {
			byName[c.Name] = c
		}
		east := byName["obs-east"]
		if east.Healthy || east.Last == nil || east.Last.Reason != "bad_status" || east.Last.Message != "status 503" ||
			east.ConsecutiveFailures < 2 || east.Since.IsZero() || east.Last.Phases["connect"] <= 0 {
			t.Errorf("check east in status: %+v (last %+v)", east, east.Last)
		}
		if c := byName["obs-both"]; c.HealthyChildren == nil || *c.HealthyChildren != 0 || c.Healthy {
			t.Errorf("calculated check in status: %+v", c)
		}
		if len(doc.Records) != 1 || doc.Records[0].ServingTier != 2 || len(doc.Records[0].Answer) != 1 || doc.Records[0].Answer[0] != "127.0.0.2" {
			t.Errorf("records in status: %+v", doc.Records)
		}
		// Read-only.
		c := &http.Client{Transport: &http.Transport{Proxy: nil}}
		resp, err := c.Post("http://"+statusAddr+"/status", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST to the status endpoint: %d, want 405", resp.StatusCode)
		}
	})
}

// TestReadyWaitsForFirstProbes: a start waits for every check's first probe
// before the DNS servers listen, and /ready, which listens before that wait,
// says 503 naming the plugin until the probe is done, then 200.
func TestReadyWaitsForFirstProbes(t *testing.T) {
	// A backend that holds the first probe until released.
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := fakebackend.NewHTTP(t, fakebackend.Options{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})})
	readyAddr := freeAddr(t)
	corefile := fmt.Sprintf(`example.org:0 {
		ready %s
		healthfailover {
			check slow %s/ {
				interval 10s
				response_timeout 10s
			}
			record www.example.org A {
				primary 127.0.0.1 check slow
			}
		}
	}`, readyAddr, slow.URL())
	// The start returns only once the first probe is done: it runs aside.
	var inst *caddy.Instance
	started := make(chan error, 1)
	go func() {
		var err error
		inst, err = inprocess.Start(corefile)
		started <- err
	}()
	t.Cleanup(func() {
		free()
		if err := <-started; err == nil {
			inprocess.Stop(inst)
		}
	})
	eventually(t, 5*time.Second, "the ready endpoint answers", func() bool {
		code, _ := httpGet(t, "http://"+readyAddr+"/ready")
		return code != 0
	})
	if code, body := httpGet(t, "http://"+readyAddr+"/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "healthfailover") {
		t.Errorf("/ready before the first probe finished: %d %q, want 503 naming healthfailover", code, body)
	}
	free()
	eventually(t, 5*time.Second, "ready once the first probe finished", func() bool {
		code, _ := httpGet(t, "http://"+readyAddr+"/ready")
		return code == http.StatusOK
	})
}

func TestCacheNeverServesPreFailoverAnswer(t *testing.T) {
	east := newBackend(t, "US EAST")
	corefile := fmt.Sprintf(`example.org:0 {
		cache 300
		healthfailover {
			check east %s/ {
				interval 100ms
				failure_threshold 1
			}
			record www.example.org A {
				ttl 300
				primary 127.0.0.1 check east
				secondary 127.0.0.2
			}
		}
	}`, east.URL())
	_, udp, _ := startCoreDNS(t, corefile)
	eventually(t, 3*time.Second, "the primary answers", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.1")
	})
	// Ask again so a cache would now hold the primary's answer for 300 s.
	addresses(t, "udp", udp, "www.example.org.")
	east.SetUp(false)
	eventually(t, 3*time.Second, "the failover passes the cache", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.2")
	})
}
