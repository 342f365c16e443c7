package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answerOf asks a server for a name and type over UDP and returns the
// answer's and additional section's records as dig prints them, TTLs
// included, sorted.
func answerOf(t *testing.T, server, name string, qtype uint16) (answer, extra []string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r := exchange(t, "udp", server, m)
	for _, rr := range r.Answer {
		answer = append(answer, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, strings.ReplaceAll(rr.String(), "\t", " "))
		}
	}
	slices.Sort(answer)
	slices.Sort(extra)
	return answer, extra
}

// TestSRVWildcardAndDegradedTTLThroughCoreDNS: an SRV set, MX and TXT sets and
// a wildcard follow one real HTTP check through a whole CoreDNS with a cache
// of 300 s in front: they fail over with the degraded TTL, the cache never
// serves a pre-failover answer (the wildcard's is bypassed by its parent
// name), and they fail back with the full TTL.
func TestSRVWildcardAndDegradedTTLThroughCoreDNS(t *testing.T) {
	east := newBackend(t, "US EAST")
	corefile := fmt.Sprintf(`example.org:0 {
		cache 300
		healthfailover {
			check east %s/ {
				interval 100ms
				failure_threshold 1
			}
			record _http._tcp.example.org SRV {
				ttl 300
				degraded_ttl 5
				primary 10 5 8080 east.example.org check east
				secondary 20 5 8080 west.example.org
			}
			record east.example.org A {
				primary 127.0.0.1
			}
			record west.example.org A {
				primary 127.0.0.2
			}
			record *.lb.example.org A {
				ttl 300
				degraded_ttl 5
				primary 127.0.0.1 check east
				secondary 127.0.0.2
			}
			record svc.example.org MX {
				primary 10 east.example.org check east
				secondary 20 west.example.org
			}
			record svc.example.org TXT {
				primary "region=us-east" check east
				secondary "region=us-west"
			}
		}
	}`, east.URL())
	_, udp, _ := startCoreDNS(t, corefile)

	type want struct {
		name         string
		qtype        uint16
		answer, xtra []string
	}
	up := []want{
		{"_http._tcp.example.org.", dns.TypeSRV,
			[]string{"_http._tcp.example.org. 300 IN SRV 10 5 8080 east.example.org."},
			[]string{"east.example.org. 30 IN A 127.0.0.1"}},
		{"shop.lb.example.org.", dns.TypeA, []string{"shop.lb.example.org. 300 IN A 127.0.0.1"}, nil},
		{"svc.example.org.", dns.TypeMX,
			[]string{"svc.example.org. 30 IN MX 10 east.example.org."},
			[]string{"east.example.org. 30 IN A 127.0.0.1"}},
		{"svc.example.org.", dns.TypeTXT, []string{`svc.example.org. 30 IN TXT "region=us-east"`}, nil},
	}
	down := []want{
		{"_http._tcp.example.org.", dns.TypeSRV,
			[]string{"_http._tcp.example.org. 5 IN SRV 20 5 8080 west.example.org."},
			[]string{"west.example.org. 30 IN A 127.0.0.2"}},
		{"shop.lb.example.org.", dns.TypeA, []string{"shop.lb.example.org. 5 IN A 127.0.0.2"}, nil},
		{"svc.example.org.", dns.TypeMX,
			[]string{"svc.example.org. 30 IN MX 20 west.example.org."},
			[]string{"west.example.org. 30 IN A 127.0.0.2"}},
		{"svc.example.org.", dns.TypeTXT, []string{`svc.example.org. 30 IN TXT "region=us-west"`}, nil},
	}
	// TTLs are compared whole: an answer the cache served would have its
	// TTL counted down.
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last answer: %s", last)
		}
	})
	all := func(wants []want) func() bool {
		return func() bool {
			for _, w := range wants {
				answer, extra := answerOf(t, udp, w.name, w.qtype)
				if !slices.Equal(answer, w.answer) || !slices.Equal(extra, w.xtra) {
					last = fmt.Sprintf("%s %s: %q + %q, want %q + %q", w.name, dns.TypeToString[w.qtype], answer, extra, w.answer, w.xtra)
					return false
				}
			}
			return true
		}
	}
	eventually(t, 3*time.Second, "the primary answers every type", all(up))
	// Ask again so a cache would now hold the primary's answers for 300 s.
	all(up)()
	east.SetUp(false)
	eventually(t, 3*time.Second, "failover with the degraded TTL, past the cache", all(down))
	east.SetUp(true)
	eventually(t, 3*time.Second, "failback with the full TTL", all(up))

	// A name that exists with another type is NODATA, not the wildcard.
	m := new(dns.Msg)
	m.SetQuestion("east.example.org.", dns.TypeSRV)
	if r := exchange(t, "udp", udp, m); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("east.example.org SRV: %s with %d answers, want NODATA", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}
