package healthfailover

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// fakeHealth is a settable source of health for handler tests.
type fakeHealth struct {
	mu sync.Mutex
	m  map[string]bool
}

func (f *fakeHealth) healthy(check string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[check]
}

// set changes a check's health and tells the table, as a transition does.
func (f *fakeHealth) set(h *HealthFailover, check string, healthy bool) {
	f.mu.Lock()
	f.m[check] = healthy
	f.mu.Unlock()
	h.table.checkChanged(check)
}

// newTestHandler parses a Corefile block and answers from fake health: every
// check named in up is healthy, every other one is not.
func newTestHandler(t *testing.T, corefile string, up ...string) (*HealthFailover, *fakeHealth) {
	t.Helper()
	cfg, err := parseString(t, corefile)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeHealth{m: map[string]bool{}}
	for _, c := range up {
		f.m[c] = true
	}
	h := newAnswerer(cfg, f.healthy)
	h.Next = test.NextHandler(dns.RcodeRefused, nil) // marks "passed on"
	return h, f
}

func serve(t *testing.T, h *HealthFailover, name string, qtype uint16) (*dns.Msg, int) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, err := h.ServeDNS(context.Background(), rec, m)
	if err != nil {
		t.Fatalf("ServeDNS %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return rec.Msg, rcode
}

// checkInOrder is check for answers whose order matters: a CNAME first, then its target's records.
func checkInOrder(t *testing.T, h *HealthFailover, tc test.Case) {
	t.Helper()
	resp, _ := serve(t, h, tc.Qname, tc.Qtype)
	if err := test.Header(tc, resp); err != nil {
		t.Fatalf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
	}
	if err := test.Section(tc, test.Answer, resp.Answer); err != nil {
		t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
	}
}

func check(t *testing.T, h *HealthFailover, tc test.Case) {
	t.Helper()
	resp, _ := serve(t, h, tc.Qname, tc.Qtype)
	if resp == nil {
		t.Fatalf("%s %s: no reply written", tc.Qname, dns.TypeToString[tc.Qtype])
	}
	if !resp.Authoritative {
		t.Errorf("%s %s: AA flag not set", tc.Qname, dns.TypeToString[tc.Qtype])
	}
	if err := test.SortAndCheck(resp, tc); err != nil {
		t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
	}
}

const failoverBlock = `healthfailover example.org {
	check east http://127.0.0.1:8080/
	check west http://127.0.0.2:8080/
	record www.example.org A {
		primary 192.0.2.1 check east
		secondary 192.0.2.2 check west
	}
	record nocheck.example.org A {
		primary 192.0.2.1 check east
		secondary 192.0.2.9
	}
	record v6.example.org AAAA {
		primary 2001:db8::1 check east
		secondary 2001:db8::2
	}
	record deep.sub.example.org A {
		primary 192.0.2.3
	}
}`

var soa = test.SOA("example.org.	30	IN	SOA	ns.dns.example.org. hostmaster.example.org. 1 7200 1800 86400 30")

func TestActivePassive(t *testing.T) {
	h, f := newTestHandler(t, failoverBlock, "east", "west")
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("www.example.org.	30	IN	A	192.0.2.1")}})

	f.set(h, "east", false)
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("www.example.org.	30	IN	A	192.0.2.2")}})
	check(t, h, test.Case{Qname: "v6.example.org.", Qtype: dns.TypeAAAA,
		Answer: []dns.RR{test.AAAA("v6.example.org.	30	IN	AAAA	2001:db8::2")}})

	// Failback is automatic.
	f.set(h, "east", true)
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("www.example.org.	30	IN	A	192.0.2.1")}})
}

func TestNegativeAnswers(t *testing.T) {
	h, _ := newTestHandler(t, failoverBlock, "east", "west")
	for _, tc := range []test.Case{
		// A name not defined: NXDOMAIN with the zone's SOA.
		{Qname: "nope.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}},
		// A defined name asked for a type it does not hold: NODATA, never NXDOMAIN.
		{Qname: "www.example.org.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soa}},
		{Qname: "www.example.org.", Qtype: dns.TypeMX, Ns: []dns.RR{soa}},
		{Qname: "v6.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
		// An ancestor of a defined name exists too (an empty non-terminal).
		{Qname: "sub.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
		// The apex has its SOA.
		{Qname: "example.org.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa}},
		{Qname: "example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
		// Case does not matter.
		{Qname: "WwW.Example.ORG.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("www.example.org.	30	IN	A	192.0.2.1")}},
	} {
		check(t, h, tc)
	}
}

func TestApexRecordKeepsItsSOA(t *testing.T) {
	h, _ := newTestHandler(t, `healthfailover example.org {
		record example.org A {
			primary 192.0.2.1
		}
	}`)
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa}})
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("example.org.	30	IN	A	192.0.2.1")}})
}

func TestNamesOutsideZonesPassOn(t *testing.T) {
	h, _ := newTestHandler(t, failoverBlock, "east")
	if _, rcode := serve(t, h, "www.example.net.", dns.TypeA); rcode != dns.RcodeRefused {
		t.Errorf("a name outside the zones got rcode %d, want it passed to the next plugin", rcode)
	}
}

func TestFallthrough(t *testing.T) {
	h, _ := newTestHandler(t, `healthfailover example.org {
		record www.example.org A {
			primary 192.0.2.1
		}
		fallthrough
	}`)
	if _, rcode := serve(t, h, "other.example.org.", dns.TypeA); rcode != dns.RcodeRefused {
		t.Errorf("with fallthrough, an undefined name got rcode %d, want it passed on", rcode)
	}
	// A defined name is still answered, NODATA included.
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soa}})
}

func TestMemberWithoutCheckIsHealthy(t *testing.T) {
	h, _ := newTestHandler(t, failoverBlock) // every check down
	check(t, h, test.Case{Qname: "nocheck.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("nocheck.example.org.	30	IN	A	192.0.2.9")}})
}

func TestAllDown(t *testing.T) {
	block := `healthfailover example.org {
		check a tcp://127.0.0.1:1
		check b tcp://127.0.0.1:2
		record primary.example.org A {
			primary 192.0.2.1 check a
			primary 192.0.2.3 check a
			secondary 192.0.2.2 check b
		}
		record nodata.example.org A {
			primary 192.0.2.1 check a
			on_all_down nodata
		}
		record servfail.example.org A {
			primary 192.0.2.1 check a
			on_all_down servfail
		}
	}`
	h, _ := newTestHandler(t, block)
	// Fail open: the primary tier answers as if healthy.
	check(t, h, test.Case{Qname: "primary.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("primary.example.org.	30	IN	A	192.0.2.1"),
		test.A("primary.example.org.	30	IN	A	192.0.2.3"),
	}})
	check(t, h, test.Case{Qname: "nodata.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}})
	if _, rcode := serve(t, h, "servfail.example.org.", dns.TypeA); rcode != dns.RcodeServerFailure {
		t.Errorf("on_all_down servfail: rcode %s, want SERVFAIL", dns.RcodeToString[rcode])
	}
}

func TestActiveActive(t *testing.T) {
	block := `healthfailover example.org {
		check a tcp://127.0.0.1:1
		check b tcp://127.0.0.1:2
		check c tcp://127.0.0.1:3
		record www.example.org A {
			primary 192.0.2.1 check a
			primary 192.0.2.2 check b
			primary 192.0.2.3 check c
		}
	}`
	h, f := newTestHandler(t, block, "a", "b", "c")
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("www.example.org.	30	IN	A	192.0.2.1"),
		test.A("www.example.org.	30	IN	A	192.0.2.2"),
		test.A("www.example.org.	30	IN	A	192.0.2.3"),
	}})
	f.set(h, "b", false)
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("www.example.org.	30	IN	A	192.0.2.1"),
		test.A("www.example.org.	30	IN	A	192.0.2.3"),
	}})

	// The order rotates from query to query (at random: 64 queries all led
	// by one member would happen once in 2^63 runs).
	firsts := map[string]bool{}
	for range 64 {
		resp, _ := serve(t, h, "www.example.org.", dns.TypeA)
		firsts[resp.Answer[0].(*dns.A).A.String()] = true
	}
	if len(firsts) != 2 {
		t.Errorf("first answers over 64 queries: %v, want both healthy members to lead in turn", firsts)
	}
}

func TestMultivalueCapsAtEight(t *testing.T) {
	block := "healthfailover example.org {\n record many.example.org A {\n"
	for i := 1; i <= 12; i++ {
		block += fmt.Sprintf("  primary 192.0.2.%d\n", i)
	}
	block += " }\n}"
	h, _ := newTestHandler(t, block)
	resp, _ := serve(t, h, "many.example.org.", dns.TypeA)
	if len(resp.Answer) != maxAnswers {
		t.Errorf("%d answers, want at most %d", len(resp.Answer), maxAnswers)
	}
}

func TestMixedWithAlias(t *testing.T) {
	block := `healthfailover example.org {
		check p1 tcp://127.0.0.1:1
		check p2 tcp://127.0.0.1:2
		check dr tcp://127.0.0.1:3
		record pool.example.org A {
			primary 192.0.2.1 check p1
			primary 192.0.2.2 check p2
		}
		record www.example.org A {
			primary alias pool.example.org
			secondary 198.51.100.1 check dr
		}
	}`
	h, f := newTestHandler(t, block, "p1", "p2", "dr")
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("www.example.org.	30	IN	A	192.0.2.1"),
		test.A("www.example.org.	30	IN	A	192.0.2.2"),
	}})
	f.set(h, "p1", false)
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("www.example.org.	30	IN	A	192.0.2.2"),
	}})
	// The alias target has no healthy member: the alias is unhealthy, the secondary answers.
	f.set(h, "p2", false)
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("www.example.org.	30	IN	A	198.51.100.1"),
	}})
	f.set(h, "p2", true)
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("www.example.org.	30	IN	A	192.0.2.2"),
	}})
}

func TestWeighted(t *testing.T) {
	block := `healthfailover example.org {
		check a tcp://127.0.0.1:1
		check b tcp://127.0.0.1:2
		record www.example.org A {
			primary 192.0.2.1 check a weight 3
			primary 192.0.2.2 check b weight 1
			primary 192.0.2.3 weight 0
		}
	}`
	h, f := newTestHandler(t, block, "a", "b")
	const n = 4000
	counts := map[string]int{}
	for range n {
		resp, _ := serve(t, h, "www.example.org.", dns.TypeA)
		if len(resp.Answer) != 1 {
			t.Fatalf("weighted answer has %d records, want 1", len(resp.Answer))
		}
		counts[resp.Answer[0].(*dns.A).A.String()]++
	}
	// 3:1 within a wide margin; weight 0 never while a weighted member is healthy.
	if a := counts["192.0.2.1"]; a < n*65/100 || a > n*85/100 {
		t.Errorf("weight 3 of 4 answered %d of %d", a, n)
	}
	if counts["192.0.2.3"] != 0 {
		t.Errorf("weight 0 answered %d times while weighted members were healthy", counts["192.0.2.3"])
	}
	f.set(h, "a", false)
	f.set(h, "b", false)
	check(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.A("www.example.org.	30	IN	A	192.0.2.3"),
	}})
}

func TestCNAME(t *testing.T) {
	block := `healthfailover example.org {
		check east tcp://127.0.0.1:1
		record www.example.org CNAME {
			ttl 10
			primary east.example.org check east
			secondary west.example.org
		}
		record east.example.org A {
			primary 192.0.2.1
		}
		record west.example.org A {
			primary 192.0.2.2
		}
		record ext.example.org CNAME {
			primary lb.example.com
		}
	}`
	h, f := newTestHandler(t, block, "east")
	checkInOrder(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.CNAME("www.example.org.	10	IN	CNAME	east.example.org."),
		test.A("east.example.org.	30	IN	A	192.0.2.1"),
	}})
	checkInOrder(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeCNAME, Answer: []dns.RR{
		test.CNAME("www.example.org.	10	IN	CNAME	east.example.org."),
	}})
	// Any type at a CNAME's name gets the CNAME (the target has no AAAA).
	checkInOrder(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
		test.CNAME("www.example.org.	10	IN	CNAME	east.example.org."),
	}})
	f.set(h, "east", false)
	checkInOrder(t, h, test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.CNAME("www.example.org.	10	IN	CNAME	west.example.org."),
		test.A("west.example.org.	30	IN	A	192.0.2.2"),
	}})
	// A target outside this plugin is left to the resolver.
	checkInOrder(t, h, test.Case{Qname: "ext.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
		test.CNAME("ext.example.org.	30	IN	CNAME	lb.example.com."),
	}})
}

func TestOtherClassesPassOn(t *testing.T) {
	h, _ := newTestHandler(t, failoverBlock, "east")
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	rcode, _ := h.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), m)
	if rcode != dns.RcodeRefused {
		t.Errorf("class CH got rcode %d, want it passed on", rcode)
	}
}

func TestCacheBypassZonesAreRecordNames(t *testing.T) {
	h, _ := newTestHandler(t, `healthfailover . {
		record www.example.org A {
			primary 192.0.2.1
		}
	}`)
	got := h.CacheBypassZones()
	if len(got) != 1 || got[0] != "www.example.org." {
		t.Errorf("CacheBypassZones() = %v, want [www.example.org.] and never the zone", got)
	}
}
