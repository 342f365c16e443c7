package healthfailover

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAnswersTotal counts answers by server and serving tier, for more
// servers than a set counts in place, and across a reload: the new
// configuration starts while the old one still answers, then the old one
// retires while a query of its own is still finishing, and no answer goes
// uncounted, before or after the old table's counts are folded away.
func TestAnswersTotal(t *testing.T) {
	const block = `healthfailover example.org {
	check a tcp://127.0.0.1:1
	record www.example.org A {
		primary 192.0.2.1 check a
		secondary 198.51.100.1
	}
}`
	c := &answersCollector{live: map[*table]bool{}, retiring: map[*table]time.Time{}, retired: map[answerLabels]uint64{}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	servers := []string{"dns://:53", "tls://:853", "dns://:1053"}
	if len(servers) <= inlineServers {
		t.Fatal("the test must ask from more servers than are counted in place")
	}
	ask := func(h *HealthFailover, server string, n int) {
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: server})
		for range n {
			m := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA)
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if _, err := h.ServeDNS(ctx, rec, m); err != nil || len(rec.Msg.Answer) != 1 {
				t.Fatalf("ServeDNS: %v %v", err, rec.Msg)
			}
		}
	}

	old, health := newTestHandler(t, block, "a")
	c.start(old.table)
	ask(old, servers[0], 3)
	ask(old, servers[1], 2)
	ask(old, servers[2], 1)
	health.set(old, "a", false)
	ask(old, servers[0], 4)

	next, _ := newTestHandler(t, block) // a is down here from the start
	c.start(next.table)
	ask(next, servers[0], 5)
	c.retire(old.table)
	c.retire(old.table)     // OnShutdown may run twice
	ask(old, servers[0], 1) // began before the shutdown, answers after it
	ask(next, servers[2], 6)

	want := map[string]float64{
		"dns://:53 tier 1":   3,
		"tls://:853 tier 1":  2,
		"dns://:1053 tier 1": 1,
		"dns://:53 tier 2":   4 + 5 + 1,
		"dns://:1053 tier 2": 6,
	}
	if got := gatherAnswers(t, reg); !maps.Equal(got, want) {
		t.Errorf("answers_total = %v, want %v", got, want)
	}

	// Once the grace is over, the old table's counts join the retired
	// totals and the table itself is let go.
	c.mu.Lock()
	c.fold(time.Now().Add(retireGrace))
	kept := len(c.retiring)
	c.mu.Unlock()
	if kept != 0 {
		t.Errorf("%d retired tables still held after the grace", kept)
	}
	if got := gatherAnswers(t, reg); !maps.Equal(got, want) {
		t.Errorf("after folding, answers_total = %v, want %v", got, want)
	}
}

// gatherAnswers returns answers_total of www.example.org A by "SERVER tier
// TIER".
func gatherAnswers(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_healthfailover_answers_total" {
			t.Errorf("unexpected metric %s", mf.GetName())
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["record"] != "www.example.org." || l["type"] != "A" {
				t.Errorf("unexpected labels %v", l)
			}
			got[l["server"]+" tier "+l["tier"]] = m.GetCounter().GetValue()
		}
	}
	return got
}
