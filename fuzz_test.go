package healthfailover

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// FuzzParse feeds arbitrary block bodies to the Corefile parser: it must
// refuse or accept, never panic, and what it accepts must build.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"check a http://127.0.0.1/ {\ninterval 1s\n}\nrecord www.example.org A {\nprimary 127.0.0.1 check a\nsecondary 127.0.0.2\n}",
		"check a tcp://[::1]:80\ncheck b calculated a {\nhealthy_threshold 1\n}\nrecord x.example.org AAAA {\nprimary ::1 check b weight 0\n}",
		"record a.example.org CNAME {\nprimary alias b.example.org\n}\nrecord b.example.org CNAME {\nprimary c.example.com\n}",
		"record a.example.org A {\ntier 3 127.0.0.1\non_all_down servfail\nttl 0\n}\nfallthrough\nstatus 127.0.0.1:0",
		"check a https://h/?q {\nhost h\nsearch \"x y\"\ntls_verify\ninvert\ndisable\n}",
		"check { {\n}\n}",
		"check a grpcs://h:1/pkg.Svc {\nhost h\ntls_verify\nfast_interval 1s\n}\ncheck b grpc://[::1]:2/\nrecord x.example.org A {\nprimary 127.0.0.1 check a\n}",
		"check a http://h/ {\nmethod HEAD\nheader X-A \"b c\"\nheader X-A d\nexpect 200 204 300-302\ninterval 2s\nfast_interval 100ms\n}",
		"check a grpc://h:1/a/b?c {\nexpect 600-1 x\nheader Host h\nmethod POST\n}",
		"record _x._tcp.example.org SRV {\nttl 60\ndegraded_ttl 5\nprimary 10 5 443 a.example.org weight 2\nsecondary 0 0 0 . weight 0\n}\nrecord a.example.org A { primary 127.0.0.1 }",
		"record example.org MX {\nprimary 10 mail.example.org\ntier 3 alias m.example.org\n}\nrecord m.example.org MX { primary 0 . }\nrecord example.org TXT { primary \"v=spf1 \\\"a\\\" \\\\ -all\" }",
		"record *.example.org A {\nprimary 127.0.0.1\n}\nrecord *.lb.example.org CNAME { primary x.example.org }\nrecord a.b.example.org TXT { primary \"\" }",
		"record w*.example.org A { primary 127.0.0.2 }",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		c := caddy.NewTestController("dns", "healthfailover example.org {\n"+body+"\n}")
		c.ServerBlockKeys = []string{"example.org."}
		cfg, err := parse(c)
		if err != nil {
			return
		}
		if _, err := checker.New(cfg.checks, checker.Options{}); err != nil {
			t.Fatalf("the parser accepted checks the checker refuses: %v\n%s", err, body)
		}
		h := newAnswerer(cfg, func(string) bool { return false })
		for _, s := range h.table.sets {
			for _, m := range s.members {
				// The canonical value is the RR's data, and reads back as itself.
				if m.rr != nil && rrData(m.rr) != m.value {
					t.Fatalf("member %q of %s is the RR %q", m.value, s.name, rrData(m.rr))
				}
			}
		}
		for name := range h.table.byName {
			// A wildcard answers the names below it, under their own name.
			for _, qname := range []string{name, strings.Replace(name, "*", "x", 1)} {
				for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeSRV, dns.TypeTXT, dns.TypeMX, dns.TypeANY} {
					m := new(dns.Msg)
					m.SetQuestion(qname, qtype)
					rec := dnstest.NewRecorder(&test.ResponseWriter{})
					h.ServeDNS(context.Background(), rec, m)
					if rec.Msg != nil {
						if _, err := rec.Msg.Pack(); err != nil {
							t.Fatalf("reply does not pack: %v\n%v", err, rec.Msg)
						}
					}
				}
			}
		}
	})
}

// fuzzBlock is failoverBlock with a record set of every other type and a
// wildcard, for FuzzServeDNS.
var fuzzBlock = strings.TrimSuffix(failoverBlock, "}") + `
	record _http._tcp.example.org SRV {
		degraded_ttl 5
		primary 10 5 443 www.example.org check east
		secondary 20 5 443 v6.example.org
	}
	record example.org MX {
		primary 10 www.example.org
	}
	record example.org TXT {
		primary "v=spf1 -all" check west
	}
	record *.wild.example.org A {
		primary 192.0.2.7 check east
		secondary 192.0.2.8
	}
	record *.cname.example.org CNAME {
		primary www.example.org
	}
}`

// FuzzServeDNS feeds arbitrary messages to the handler: every reply it
// writes must be a valid DNS message.
func FuzzServeDNS(f *testing.F) {
	cfg, err := parseString(&testing.T{}, fuzzBlock)
	if err != nil {
		f.Fatal(err)
	}
	health := map[string]bool{"east": false, "west": true}
	h := newAnswerer(cfg, func(c string) bool { return health[c] })
	h.Next = test.NextHandler(dns.RcodeRefused, nil)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.example.org.", dns.TypeA}, {"v6.example.org.", dns.TypeAAAA}, {"nope.example.org.", dns.TypeANY}, {"example.org.", dns.TypeSOA},
		{"_http._tcp.example.org.", dns.TypeSRV}, {"example.org.", dns.TypeMX}, {"example.org.", dns.TypeTXT}, {"a.b.wild.example.org.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		wire, _ := m.Pack()
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || len(m.Question) != 1 {
			return // CoreDNS's server refuses these before any plugin sees them
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		h.ServeDNS(context.Background(), rec, m)
		if rec.Msg != nil {
			if _, err := rec.Msg.Pack(); err != nil {
				t.Fatalf("reply does not pack: %v\n%v", err, rec.Msg)
			}
		}
	})
}
