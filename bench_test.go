package healthfailover

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	_ "github.com/coredns/coredns/plugin/hosts"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

const benchBlock = `healthfailover example.org {
	check a tcp://127.0.0.1:1
	check b tcp://127.0.0.1:2
	check c tcp://127.0.0.1:3
	record multi.example.org A {
		primary 192.0.2.1 check a
		primary 192.0.2.2 check b
		primary 192.0.2.3 check c
		secondary 198.51.100.1
	}
	record weighted.example.org A {
		primary 192.0.2.1 check a weight 3
		primary 192.0.2.2 check b weight 1
	}
	record alias.example.org A {
		primary alias multi.example.org
		secondary 198.51.100.1
	}
	record cname.example.org CNAME {
		primary single.example.org check a
		secondary multi.example.org
	}
	record single.example.org A {
		primary 192.0.2.9
	}
	record *.wild.example.org A {
		primary 192.0.2.1 check a
		primary 192.0.2.2 check b
		primary 192.0.2.3 check c
	}
	record _http._tcp.example.org SRV {
		primary 10 5 443 single.example.org check a
		secondary 20 5 443 multi.example.org
	}
}`

// hostsHandler builds the hosts plugin through its own setup, for a baseline
// serving the same name in the same benchmark run.
func hostsHandler(b *testing.B, block string) plugin.Handler {
	b.Helper()
	setup, err := caddy.DirectiveAction("dns", "hosts")
	if err != nil {
		b.Fatal(err)
	}
	c := caddy.NewTestController("dns", block)
	if err := setup(c); err != nil {
		b.Fatal(err)
	}
	return dnsserver.GetConfig(c).Plugin[0](nil)
}

// requireAnswer fails the benchmark unless the handler answers m with rcode
// and that many answer records: a baseline that falls through to a missing
// next plugin, or a set that answers nothing, would time the wrong path.
func requireAnswer(b *testing.B, h plugin.Handler, m *dns.Msg, rcode, answers int) {
	b.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := h.ServeDNS(context.Background(), rec, m); err != nil {
		b.Fatalf("%s %s: %v", h.Name(), m.Question[0].Name, err)
	}
	if rec.Msg == nil || rec.Msg.Rcode != rcode || len(rec.Msg.Answer) != answers {
		b.Fatalf("%s %s: want rcode %d with %d answers, got %v", h.Name(), m.Question[0].Name, rcode, answers, rec.Msg)
	}
}

// BenchmarkServeDNS measures the query path: a lookup into the answer
// snapshot and building the reply, against the hosts plugin's ServeDNS.
func BenchmarkServeDNS(b *testing.B) {
	cfg, err := parseString(&testing.T{}, benchBlock)
	if err != nil {
		b.Fatal(err)
	}
	hf := newAnswerer(cfg, func(string) bool { return true })
	hosts := hostsHandler(b, "hosts /dev/null example.org {\n192.0.2.1 multi.example.org\n192.0.2.2 multi.example.org\n192.0.2.3 multi.example.org\n}")

	cases := []struct {
		name    string
		handler plugin.Handler
		qname   string
		rcode   int
		answers int
		qtype   uint16 // A when 0
	}{
		{"hosts", hosts, "multi.example.org.", dns.RcodeSuccess, 3, 0},
		{"multivalue", hf, "multi.example.org.", dns.RcodeSuccess, 3, 0},
		{"weighted", hf, "weighted.example.org.", dns.RcodeSuccess, 1, 0},
		{"alias", hf, "alias.example.org.", dns.RcodeSuccess, 3, 0},
		{"cname", hf, "cname.example.org.", dns.RcodeSuccess, 2, 0},
		{"nxdomain", hf, "nope.example.org.", dns.RcodeNameError, 0, 0},
		// A wildcard's answer is copied under the name asked: one allocation more.
		{"wildcard", hf, "x.wild.example.org.", dns.RcodeSuccess, 3, 0},
		// An SRV answer and its target's address in the additional section.
		{"srv", hf, "_http._tcp.example.org.", dns.RcodeSuccess, 1, dns.TypeSRV},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, cmp.Or(tc.qtype, dns.TypeA))
			requireAnswer(b, tc.handler, m, tc.rcode, tc.answers)
			w := &test.ResponseWriter{}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				tc.handler.ServeDNS(ctx, w, m)
			}
		})
	}
}

// BenchmarkServeDNSParallel is the same lookups from every core at once: the
// query path shares nothing that would contend.
func BenchmarkServeDNSParallel(b *testing.B) {
	cfg, err := parseString(&testing.T{}, benchBlock)
	if err != nil {
		b.Fatal(err)
	}
	hf := newAnswerer(cfg, func(string) bool { return true })
	hosts := hostsHandler(b, "hosts /dev/null example.org {\n192.0.2.1 multi.example.org\n192.0.2.2 multi.example.org\n192.0.2.3 multi.example.org\n}")
	for _, tc := range []struct {
		name    string
		handler plugin.Handler
	}{{"hosts", hosts}, {"multivalue", hf}} {
		b.Run(tc.name, func(b *testing.B) {
			m := new(dns.Msg)
			m.SetQuestion("multi.example.org.", dns.TypeA)
			requireAnswer(b, tc.handler, m, dns.RcodeSuccess, 3)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				m := new(dns.Msg)
				m.SetQuestion("multi.example.org.", dns.TypeA)
				w := &test.ResponseWriter{}
				for pb.Next() {
					tc.handler.ServeDNS(context.Background(), w, m)
				}
			})
		})
	}
}

// BenchmarkTransition measures one health change with 10,000 record sets:
// only the sets it touches are rebuilt.
func BenchmarkTransition(b *testing.B) {
	const n = 10000
	var sb strings.Builder
	sb.WriteString("healthfailover example.org {\n")
	for i := range n {
		fmt.Fprintf(&sb, "check c%d tcp://127.0.0.1:%d\n", i, 1+i%60000)
		fmt.Fprintf(&sb, "record h%d.example.org A {\nprimary 192.0.2.%d check c%d\nsecondary 198.51.100.%d\n}\n", i, 1+i%250, i, 1+i%250)
	}
	sb.WriteString("}")
	cfg, err := parseString(&testing.T{}, sb.String())
	if err != nil {
		b.Fatal(err)
	}
	health := &fakeHealth{m: map[string]bool{}}
	h := newAnswerer(cfg, health.healthy)

	b.Run("one-check-of-10000", func(b *testing.B) {
		b.ReportAllocs()
		up := false
		for b.Loop() {
			health.set(h, "c4242", up)
			up = !up
		}
	})
	b.Run("rebuild-all-10000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.table.rebuildAll()
		}
	})
}

// BenchmarkServeDNS10k is the query path over 10,000 names asked in a
// shuffled order, healthfailover against hosts serving the same names: at
// this size a query's cost is mostly the memory it touches, not the code.
func BenchmarkServeDNS10k(b *testing.B) {
	const n = 10000
	var block, hostsFile strings.Builder
	block.WriteString("healthfailover example.org {\ncheck c tcp://127.0.0.1:1\n")
	for i := range n {
		fmt.Fprintf(&block, "record h%d.example.org A {\nprimary 192.0.%d.%d check c\nsecondary 198.51.%d.%d\n}\n", i, i/250, 1+i%250, i/250, 1+i%250)
		fmt.Fprintf(&hostsFile, "192.0.%d.%d h%d.example.org\n", i/250, 1+i%250, i)
	}
	block.WriteString("}")
	cfg, err := parseString(&testing.T{}, block.String())
	if err != nil {
		b.Fatal(err)
	}
	hf := newAnswerer(cfg, func(string) bool { return true })
	// Inline entries: the test controller does not run the start-up hook
	// that reads a hosts file; both end up in the same kind of map.
	hosts := hostsHandler(b, "hosts /dev/null example.org {\n"+hostsFile.String()+"no_reverse\n}")

	queries := make([]*dns.Msg, n)
	for i, j := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		queries[i] = new(dns.Msg).SetQuestion(fmt.Sprintf("h%d.example.org.", j), dns.TypeA)
	}
	for _, tc := range []struct {
		name    string
		handler plugin.Handler
	}{{"hosts", hosts}, {"healthfailover", hf}} {
		b.Run(tc.name, func(b *testing.B) {
			for _, m := range []*dns.Msg{queries[0], queries[n-1]} {
				requireAnswer(b, tc.handler, m, dns.RcodeSuccess, 1)
			}
			w := &test.ResponseWriter{}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tc.handler.ServeDNS(ctx, w, queries[i])
				if i++; i == n {
					i = 0
				}
			}
		})
	}
}
