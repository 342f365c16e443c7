package healthfailover

import (
	"slices"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// The record types besides addresses and CNAMEs (SRV, MX, TXT), wildcards
// and degraded_ttl. Test names carry SRV, Wildcard or Degraded, so that
// -run 'SRV|Wildcard|Degraded' runs them all.

const srvBlock = `healthfailover example.org {
	check east tcp://127.0.0.1:1
	check west tcp://127.0.0.1:2
	record _http._tcp.example.org SRV {
		degraded_ttl 5
		primary 10 5 443 east.example.org check east
		secondary 20 5 8443 west.example.org check west
		tier 3 30 0 80 backup.example.net
	}
	record _both._tcp.example.org SRV {
		primary 10 5 443 east.example.org
		primary 10 5 8443 east.example.org
		primary 20 5 443 west.example.org
	}
	record _pool._tcp.example.org SRV {
		primary alias _http._tcp.example.org
	}
	record _gone._tcp.example.org SRV {
		primary 10 5 443 east.example.org check east
		on_all_down servfail
	}
	record east.example.org A {
		primary 192.0.2.1
	}
	record east.example.org AAAA {
		primary 2001:db8::1
	}
	record west.example.org A {
		primary 192.0.2.2 check west
		secondary 192.0.2.22
	}
	record example.org MX {
		primary 10 mx1.example.org check east
		secondary 20 mx2.example.net
	}
	record example.org TXT {
		primary "v=spf1 ip4:192.0.2.1 -all" check east
		secondary "v=spf1 ip4:192.0.2.2 -all"
	}
	record mx1.example.org A {
		primary 192.0.2.25
	}
}`

func TestSRVFailoverAndAdditionalAddresses(t *testing.T) {
	h, f := newTestHandler(t, srvBlock, "east", "west")
	check(t, h, test.Case{Qname: "_http._tcp.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_http._tcp.example.org.	30	IN	SRV	10 5 443 east.example.org.")},
		Extra: []dns.RR{
			test.A("east.example.org.	30	IN	A	192.0.2.1"),
			test.AAAA("east.example.org.	30	IN	AAAA	2001:db8::1"),
		}})
	// One target named twice has its addresses once.
	check(t, h, test.Case{Qname: "_both._tcp.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{
			test.SRV("_both._tcp.example.org.	30	IN	SRV	10 5 443 east.example.org."),
			test.SRV("_both._tcp.example.org.	30	IN	SRV	10 5 8443 east.example.org."),
			test.SRV("_both._tcp.example.org.	30	IN	SRV	20 5 443 west.example.org."),
		},
		Extra: []dns.RR{
			test.A("east.example.org.	30	IN	A	192.0.2.1"),
			test.AAAA("east.example.org.	30	IN	AAAA	2001:db8::1"),
			test.A("west.example.org.	30	IN	A	192.0.2.2"),
		}})

	// The primary fails: the secondary target answers, with the degraded
	// TTL, and its address follows its own set's health.
	f.set(h, "east", false)
	check(t, h, test.Case{Qname: "_http._tcp.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_http._tcp.example.org.	5	IN	SRV	20 5 8443 west.example.org.")},
		Extra:  []dns.RR{test.A("west.example.org.	30	IN	A	192.0.2.2")}})
	check(t, h, test.Case{Qname: "_pool._tcp.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_pool._tcp.example.org.	30	IN	SRV	20 5 8443 west.example.org.")},
		Extra:  []dns.RR{test.A("west.example.org.	30	IN	A	192.0.2.2")}})
	if _, rcode := serve(t, h, "_gone._tcp.example.org.", dns.TypeSRV); rcode != dns.RcodeServerFailure {
		t.Errorf("SRV on_all_down servfail: rcode %s", dns.RcodeToString[rcode])
	}

	// Both down: the third tier, a target outside the zones, without addresses.
	f.set(h, "west", false)
	check(t, h, test.Case{Qname: "_http._tcp.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_http._tcp.example.org.	5	IN	SRV	30 0 80 backup.example.net.")}})

	// Failback, with the full TTL again.
	f.set(h, "east", true)
	f.set(h, "west", true)
	check(t, h, test.Case{Qname: "_http._tcp.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_http._tcp.example.org.	30	IN	SRV	10 5 443 east.example.org.")},
		Extra: []dns.RR{
			test.A("east.example.org.	30	IN	A	192.0.2.1"),
			test.AAAA("east.example.org.	30	IN	AAAA	2001:db8::1"),
		}})
	// An SRV name asked for another type: NODATA.
	check(t, h, test.Case{Qname: "_http._tcp.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}})
}

func TestSRVAndMXAndTXTFailover(t *testing.T) {
	h, f := newTestHandler(t, srvBlock, "east", "west")
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeMX,
		Answer: []dns.RR{test.MX("example.org.	30	IN	MX	10 mx1.example.org.")},
		Extra:  []dns.RR{test.A("mx1.example.org.	30	IN	A	192.0.2.25")}})
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT(`example.org.	30	IN	TXT	"v=spf1 ip4:192.0.2.1 -all"`)}})
	// The apex keeps its SOA; ANY at a name without addresses gets one of its sets.
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa}})
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeANY,
		Answer: []dns.RR{test.MX("example.org.	30	IN	MX	10 mx1.example.org.")},
		Extra:  []dns.RR{test.A("mx1.example.org.	30	IN	A	192.0.2.25")}})

	f.set(h, "east", false)
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeMX,
		Answer: []dns.RR{test.MX("example.org.	30	IN	MX	20 mx2.example.net.")}})
	check(t, h, test.Case{Qname: "example.org.", Qtype: dns.TypeTXT,
		Answer: []dns.RR{test.TXT(`example.org.	30	IN	TXT	"v=spf1 ip4:192.0.2.2 -all"`)}})
}

// The status document, drains and the HTML page name a member by its data
// as dig prints it.
func TestSRVAndMXAndTXTValues(t *testing.T) {
	h, _ := newTestHandler(t, srvBlock, "east", "west")
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"_http._tcp.example.org.", dns.TypeSRV, []string{"10 5 443 east.example.org."}},
		{"_pool._tcp.example.org.", dns.TypeSRV, []string{"10 5 443 east.example.org."}},
		{"example.org.", dns.TypeMX, []string{"10 mx1.example.org."}},
		{"example.org.", dns.TypeTXT, []string{`"v=spf1 ip4:192.0.2.1 -all"`}},
	} {
		set := h.table.byName[tc.name].of(tc.qtype)
		st := newRecordStatus(h.table.block, set)
		if st.Type != dns.TypeToString[tc.qtype] || !slices.Equal(st.Answer, tc.want) {
			t.Errorf("status of %s %s: %s %q, want %q", tc.name, dns.TypeToString[tc.qtype], st.Type, st.Answer, tc.want)
		}
	}

	isCheck := func(name string) bool { return name == "east" || name == "west" }
	o := parseOverrides("maint", []byte(`drain _http._tcp.example.org SRV 10 5 443 EAST.example.org moving off
drain example.org TXT "v=spf1  ip4:192.0.2.1 -all" spf
drain example.org MX 10 mx1.example.org.
drain example.org MX 10
drain _http._tcp.example.org SRV 10 5 443 west.example.org
`), isCheck, h.table)
	srv := h.table.byName["_http._tcp.example.org."].of(dns.TypeSRV)
	if d, ok := o.drains[srv]["10 5 443 east.example.org."]; !ok || d.reason != "moving off" {
		t.Errorf("SRV drain: %+v", o.drains[srv])
	}
	if d, ok := o.drains[h.table.byName["example.org."].of(dns.TypeTXT)][`"v=spf1 ip4:192.0.2.1 -all"`]; !ok || d.reason != "spf" {
		t.Errorf("TXT drain: %+v", o.drains[h.table.byName["example.org."].of(dns.TypeTXT)])
	}
	if _, ok := o.drains[h.table.byName["example.org."].of(dns.TypeMX)]["10 mx1.example.org."]; !ok {
		t.Errorf("MX drain: %+v", o.drains[h.table.byName["example.org."].of(dns.TypeMX)])
	}
	want := []string{
		"maint:4: drain: example.org. MX has no member 10; line ignored",
		"maint:5: drain: _http._tcp.example.org. SRV has no member 10 5 443 west.example.org.; line ignored",
	}
	if !slices.Equal(o.errors, want) {
		t.Errorf("errors\n%q\nwant\n%q", o.errors, want)
	}
	h.table.setDrained(o.drains)
	check(t, h, test.Case{Qname: "_http._tcp.example.org.", Qtype: dns.TypeSRV,
		Answer: []dns.RR{test.SRV("_http._tcp.example.org.	5	IN	SRV	20 5 8443 west.example.org.")},
		Extra:  []dns.RR{test.A("west.example.org.	30	IN	A	192.0.2.2")}})
	if got := newRecordStatus(h.table.block, srv).Drained; !slices.Equal(got, []string{"10 5 443 east.example.org."}) {
		t.Errorf("status drained %q", got)
	}
}

const wildcardBlock = `healthfailover example.org sub.example.org {
	check east tcp://127.0.0.1:1
	record *.example.org A {
		primary 192.0.2.1 check east
		secondary 192.0.2.2
	}
	record *.example.org TXT {
		primary "wild"
	}
	record www.example.org AAAA {
		primary 2001:db8::1
	}
	record a.b.example.org A {
		primary 192.0.2.3
	}
	record *.lb.example.org CNAME {
		primary www.example.org
	}
	record _sip._udp.example.org SRV {
		primary 10 5 5060 pbx.example.org
	}
}`

func TestWildcardAnswers(t *testing.T) {
	h, f := newTestHandler(t, wildcardBlock, "east")
	for _, tc := range []test.Case{
		// Any name the block does not define, owned by the name asked.
		{Qname: "foo.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("foo.example.org.	30	IN	A	192.0.2.1")}},
		{Qname: "FoO.Example.ORG.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("foo.example.org.	30	IN	A	192.0.2.1")}},
		{Qname: "deep.foo.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("deep.foo.example.org.	30	IN	A	192.0.2.1")}},
		{Qname: "foo.example.org.", Qtype: dns.TypeTXT, Answer: []dns.RR{test.TXT(`foo.example.org.	30	IN	TXT	"wild"`)}},
		{Qname: "foo.example.org.", Qtype: dns.TypeANY, Answer: []dns.RR{test.A("foo.example.org.	30	IN	A	192.0.2.1")}},
		// The wildcard has no AAAA: NODATA, not NXDOMAIN.
		{Qname: "foo.example.org.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soa}},
		// The wildcard's own name answers as itself.
		{Qname: "*.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("*.example.org.	30	IN	A	192.0.2.1")}},
		// A name that exists with another type gets NODATA, not the wildcard (RFC 4592).
		{Qname: "www.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
		// So does an empty non-terminal, and the apex.
		{Qname: "b.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
		{Qname: "example.org.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
		{Qname: "example.org.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa}},
		// Below an existing name, that name is the closest encloser: it has
		// no wildcard, so NXDOMAIN.
		{Qname: "x.b.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}},
		{Qname: "x.www.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}},
		// A wildcard does not reach into another zone of the block.
		{Qname: "x.sub.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{test.SOA("sub.example.org.	30	IN	SOA	ns.dns.sub.example.org. hostmaster.sub.example.org. 1 7200 1800 86400 30")}},
		// An SRV target the wildcard answers has its address in the additional section.
		{Qname: "_sip._udp.example.org.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_sip._udp.example.org.	30	IN	SRV	10 5 5060 pbx.example.org.")},
			Extra:  []dns.RR{test.A("pbx.example.org.	30	IN	A	192.0.2.1")}},
	} {
		check(t, h, tc)
	}
	// A wildcard CNAME: owned by the name asked, then its target's records.
	checkInOrder(t, h, test.Case{Qname: "x.lb.example.org.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
		test.CNAME("x.lb.example.org.	30	IN	CNAME	www.example.org."),
		test.AAAA("www.example.org.	30	IN	AAAA	2001:db8::1"),
	}})

	// The wildcard fails over like any set.
	f.set(h, "east", false)
	check(t, h, test.Case{Qname: "foo.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("foo.example.org.	30	IN	A	192.0.2.2")}})

	// The snapshot's RRs keep the wildcard's name: answers are copies.
	if got := h.table.byName["*.example.org."].a.current.Load().choices[0].rr.Header().Name; got != "*.example.org." {
		t.Errorf("a wildcard answer renamed the snapshot's RR to %s", got)
	}
}

func TestWildcardFallthrough(t *testing.T) {
	h, _ := newTestHandler(t, `healthfailover example.org {
		record *.lb.example.org A {
			primary 192.0.2.1
		}
		record www.lb.example.org AAAA {
			primary 2001:db8::1
		}
		fallthrough
	}`)
	check(t, h, test.Case{Qname: "x.lb.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("x.lb.example.org.	30	IN	A	192.0.2.1")}})
	for _, name := range []string{"other.example.org.", "x.www.lb.example.org."} {
		if _, rcode := serve(t, h, name, dns.TypeA); rcode != dns.RcodeRefused {
			t.Errorf("%s: rcode %s, want it passed on", name, dns.RcodeToString[rcode])
		}
	}
}

// The cache bypasses a name and all below it. A wildcard is bypassed by
// the name it sits below, unless that is a zone.
func TestWildcardCacheBypass(t *testing.T) {
	h, _ := newTestHandler(t, wildcardBlock)
	got := h.CacheBypassZones()
	slices.Sort(got)
	want := []string{"*.example.org.", "*.lb.example.org.", "_sip._udp.example.org.", "a.b.example.org.", "lb.example.org.", "www.example.org."}
	if !slices.Equal(got, want) {
		t.Errorf("CacheBypassZones %q, want %q", got, want)
	}
	// As cluster DNS (zone ".") a wildcard's parent is no zone.
	h, _ = newTestHandler(t, `healthfailover . {
		record *.example.org A {
			primary 192.0.2.1
		}
	}`)
	if got := h.CacheBypassZones(); !slices.Contains(got, "example.org.") || slices.Contains(got, ".") {
		t.Errorf("CacheBypassZones %q", got)
	}
	check(t, h, test.Case{Qname: "x.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("x.example.org.	30	IN	A	192.0.2.1")}})
}

func TestDegradedTTL(t *testing.T) {
	h, f := newTestHandler(t, `healthfailover example.org {
		check a tcp://127.0.0.1:1
		check b tcp://127.0.0.1:2
		check c tcp://127.0.0.1:3
		record pool.example.org A {
			ttl 60
			degraded_ttl 5
			primary 192.0.2.1 check a
			primary 192.0.2.2 check b
			secondary 192.0.2.9 check c
		}
		record www.example.org A {
			ttl 120
			degraded_ttl 10
			primary alias pool.example.org
		}
		record plain.example.org A {
			ttl 60
			primary 192.0.2.1 check a
			secondary 192.0.2.9
		}
		record zero.example.org CNAME {
			degraded_ttl 0
			primary pool.example.net check a
			secondary backup.example.net
		}
	}`, "a", "b", "c")
	pool := func(ttl string, ips ...string) test.Case {
		tc := test.Case{Qname: "pool.example.org.", Qtype: dns.TypeA}
		for _, ip := range ips {
			tc.Answer = append(tc.Answer, test.A("pool.example.org.	"+ttl+"	IN	A	"+ip))
		}
		return tc
	}
	www := func(ttl string, ips ...string) test.Case {
		tc := test.Case{Qname: "www.example.org.", Qtype: dns.TypeA}
		for _, ip := range ips {
			tc.Answer = append(tc.Answer, test.A("www.example.org.	"+ttl+"	IN	A	"+ip))
		}
		return tc
	}
	check(t, h, pool("60", "192.0.2.1", "192.0.2.2"))
	check(t, h, www("120", "192.0.2.1", "192.0.2.2"))
	check(t, h, test.Case{Qname: "zero.example.org.", Qtype: dns.TypeCNAME,
		Answer: []dns.RR{test.CNAME("zero.example.org.	30	IN	CNAME	pool.example.net.")}})

	// One primary down: the first tier still answers, but not whole.
	// An alias of a degraded set is degraded too.
	f.set(h, "b", false)
	check(t, h, pool("5", "192.0.2.1"))
	check(t, h, www("10", "192.0.2.1"))
	// Without degraded_ttl, the TTL stays.
	f.set(h, "a", false)
	check(t, h, test.Case{Qname: "plain.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("plain.example.org.	60	IN	A	192.0.2.9")}})
	check(t, h, test.Case{Qname: "zero.example.org.", Qtype: dns.TypeCNAME,
		Answer: []dns.RR{test.CNAME("zero.example.org.	0	IN	CNAME	backup.example.net.")}})
	// Failed over, and every member down (fail-open): degraded.
	check(t, h, pool("5", "192.0.2.9"))
	f.set(h, "c", false)
	check(t, h, pool("5", "192.0.2.1", "192.0.2.2"))
	check(t, h, www("10", "192.0.2.1", "192.0.2.2"))

	// Failback: the whole first tier healthy, the full TTL.
	for _, c := range []string{"a", "b", "c"} {
		f.set(h, c, true)
	}
	check(t, h, pool("60", "192.0.2.1", "192.0.2.2"))
	check(t, h, www("120", "192.0.2.1", "192.0.2.2"))

	// A drained member of the first tier degrades the set too.
	h.table.setDrained(map[*recordSet]map[string]drain{h.table.byName["pool.example.org."].a: {"192.0.2.2": {by: "f:1"}}})
	check(t, h, pool("5", "192.0.2.1"))
}
