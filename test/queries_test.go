package test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A long name under example.org: 255 bytes in wire format, the longest name there is.
var longName = strings.Repeat(strings.Repeat("a", 60)+".", 4)[:241] + ".example.org."

const oddQueriesCorefile = `example.org:0 {
	healthfailover {
		record www.example.org A {
			primary 127.0.0.1
		}
		record www.example.org AAAA {
			primary ::1
		}
		record big.example.org CNAME {
			primary ` + "LONGNAME" + `
		}
		record LONGNAME AAAA {
			primary 2001:db8::1
			primary 2001:db8::2
			primary 2001:db8::3
			primary 2001:db8::4
			primary 2001:db8::5
			primary 2001:db8::6
			primary 2001:db8::7
			primary 2001:db8::8
		}
	}
}`

func exchange(t *testing.T, network, server string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s over %s: %v", m.Question[0].String(), network, err)
	}
	return r
}

func TestOddQueries(t *testing.T) {
	if len(longName) != 254 { // 255 bytes in wire format, the most a name may have
		t.Fatalf("longName is %d bytes", len(longName))
	}
	_, udp, tcp := startCoreDNS(t, strings.ReplaceAll(oddQueriesCorefile, "LONGNAME", longName))

	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
	tests := []struct {
		name    string
		msg     *dns.Msg
		network string
		rcode   int
		answers int
	}{
		{"ANY gets both families", q("www.example.org.", dns.TypeANY), "udp", dns.RcodeSuccess, 2},
		{"an unknown type is NODATA", q("www.example.org.", 65000), "udp", dns.RcodeSuccess, 0},
		{"upper case", q("WWW.EXAMPLE.ORG.", dns.TypeA), "udp", dns.RcodeSuccess, 1},
		{"mixed case", q("wWw.ExAmPlE.oRg.", dns.TypeAAAA), "udp", dns.RcodeSuccess, 1},
		{"a 255-byte name", q(longName, dns.TypeAAAA), "udp", dns.RcodeSuccess, 8},
		{"a 255-byte undefined name", q(strings.Replace(longName, "a", "b", 1), dns.TypeA), "udp", dns.RcodeNameError, 0},
		{"over TCP", q("www.example.org.", dns.TypeA), "tcp", dns.RcodeSuccess, 1},
		{"EDNS0 with a large buffer", q("www.example.org.", dns.TypeA).SetEdns0(65535, true), "udp", dns.RcodeSuccess, 1},
		{"too big for 512 bytes: complete over TCP", q("big.example.org.", dns.TypeAAAA), "tcp", dns.RcodeSuccess, 9},
		{"too big for 512 bytes: complete with EDNS0 4096", q("big.example.org.", dns.TypeAAAA).SetEdns0(4096, false), "udp", dns.RcodeSuccess, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := map[string]string{"udp": udp, "tcp": tcp}[tc.network]
			r := exchange(t, tc.network, server, tc.msg)
			if r.Rcode != tc.rcode || len(r.Answer) != tc.answers || r.Truncated {
				t.Errorf("rcode %s, %d answers, TC %v; want %s, %d answers, complete:\n%v",
					dns.RcodeToString[r.Rcode], len(r.Answer), r.Truncated, dns.RcodeToString[tc.rcode], tc.answers, r)
			}
		})
	}

	t.Run("too big for 512 bytes over UDP sets TC", func(t *testing.T) {
		r := exchange(t, "udp", udp, q("big.example.org.", dns.TypeAAAA))
		if !r.Truncated {
			t.Errorf("a %d-answer reply over plain UDP is not truncated", len(r.Answer))
		}
	})

	t.Run("class CH is not ours", func(t *testing.T) {
		m := q("www.example.org.", dns.TypeTXT)
		m.Question[0].Qclass = dns.ClassCHAOS
		r := exchange(t, "udp", udp, m)
		if len(r.Answer) != 0 || r.Rcode == dns.RcodeSuccess {
			t.Errorf("class CH: %v", r)
		}
	})

	t.Run("garbage and empty questions do not stop the server", func(t *testing.T) {
		conn, err := net.Dial("udp", udp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, junk := range [][]byte{{0}, {0xff, 0xff, 0xff}, make([]byte, 12), []byte(strings.Repeat("\xc0", 600))} {
			conn.Write(junk)
		}
		empty := new(dns.Msg)
		empty.Id = dns.Id()
		c := &dns.Client{Timeout: time.Second}
		c.Exchange(empty, udp) // FORMERR or silence, either is fine
		r := exchange(t, "udp", udp, q("www.example.org.", dns.TypeA))
		if len(r.Answer) != 1 {
			t.Errorf("after garbage: %v", r)
		}
	})
}
