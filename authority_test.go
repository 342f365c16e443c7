package healthfailover

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

const nsCorefile = `healthfailover example.org {
	ns ns1.example.org ns2.example.net
	check a tcp://127.0.0.1:53
	record www.example.org A {
		primary 127.0.0.1 check a
	}
	record ns1.example.org A {
		primary 127.0.0.53
	}
}`

// Defect: without NS at the apex, a resolver that primes the zone's name
// servers (unbound's stub-prime) got NODATA and failed every name.
func TestNSAtTheApex(t *testing.T) {
	h, _ := newTestHandler(t, nsCorefile, "a")
	resp, _ := serve(t, h, "example.org.", dns.TypeNS)
	tc := test.Case{
		Qname: "example.org.", Qtype: dns.TypeNS,
		Answer: []dns.RR{
			test.NS("example.org.	3600	IN	NS	ns1.example.org."),
			test.NS("example.org.	3600	IN	NS	ns2.example.net."),
		},
		Extra: []dns.RR{test.A("ns1.example.org.	30	IN	A	127.0.0.53")},
	}
	if err := test.SortAndCheck(resp, tc); err != nil {
		t.Error(err)
	}
	if !resp.Authoritative {
		t.Error("NS answer without AA")
	}

	// The first name server is the SOA's MNAME.
	resp, _ = serve(t, h, "example.org.", dns.TypeSOA)
	if soa, ok := resp.Answer[0].(*dns.SOA); !ok || soa.Ns != "ns1.example.org." {
		t.Errorf("SOA %v, want MNAME ns1.example.org.", resp.Answer)
	}

	// Below the apex, NS is a type the name does not hold.
	resp, _ = serve(t, h, "www.example.org.", dns.TypeNS)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 || len(resp.Ns) != 1 {
		t.Errorf("NS of www.example.org: %v, want NODATA with the SOA", resp)
	}
}

func TestNoNSWithoutTheOption(t *testing.T) {
	h, _ := newTestHandler(t, `healthfailover example.org {
		record www.example.org A {
			primary 127.0.0.1
		}
	}`)
	resp, _ := serve(t, h, "example.org.", dns.TypeNS)
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 || len(resp.Ns) != 1 || resp.Ns[0].(*dns.SOA).Ns != "ns.dns.example.org." {
		t.Errorf("NS without ns: %v, want NODATA with the made-up SOA", resp)
	}
}

// Defect: transfers and NOTIFY got NOERROR with an empty zone (dig: "Transfer
// failed") and the A record back.
func TestTransfersAndNotifyAreRefused(t *testing.T) {
	h, _ := newTestHandler(t, nsCorefile, "a")
	for _, qtype := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		if resp, rcode := serve(t, h, "example.org.", qtype); rcode != dns.RcodeRefused || resp != nil {
			t.Errorf("%s: rcode %s, reply %v; want REFUSED and no answer", dns.TypeToString[qtype], dns.RcodeToString[rcode], resp)
		}
	}
	m := new(dns.Msg)
	m.SetNotify("example.org.")
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, err := h.ServeDNS(context.Background(), rec, m)
	if err != nil || rcode != dns.RcodeRefused || rec.Msg != nil {
		t.Errorf("NOTIFY: rcode %s, err %v, reply %v; want REFUSED", dns.RcodeToString[rcode], err, rec.Msg)
	}
	// Outside the zones they are the next plugin's business.
	if _, rcode := serve(t, h, "example.com.", dns.TypeAXFR); rcode != dns.RcodeRefused {
		t.Errorf("AXFR outside the zone: %s", dns.RcodeToString[rcode])
	}
}

// Defect: the SOA serial was the clock at start-up, so two replicas with
// the same Corefile disagreed, and every restart changed it.
func TestSOASerialComesFromTheConfiguration(t *testing.T) {
	serial := func(corefile string) uint32 {
		h, _ := newTestHandler(t, corefile)
		resp, _ := serve(t, h, "example.org.", dns.TypeSOA)
		return resp.Answer[0].(*dns.SOA).Serial
	}
	a := serial(nsCorefile)
	if b := serial(nsCorefile); a != b {
		t.Errorf("the same configuration gave serials %d and %d", a, b)
	}
	changed := serial(`healthfailover example.org {
	ns ns1.example.org ns2.example.net
	check a tcp://127.0.0.1:53
	record www.example.org A {
		ttl 31
		primary 127.0.0.1 check a
	}
	record ns1.example.org A {
		primary 127.0.0.53
	}
}`)
	if changed == a {
		t.Errorf("a changed ttl kept the serial %d", a)
	}
}
