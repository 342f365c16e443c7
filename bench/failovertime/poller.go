package main

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// poller asks one name's A records over UDP every interval, as a client
// watching the failover would.
type poller struct {
	client *dns.Client
	conn   *dns.Conn
	every  time.Duration
}

func newPoller(server string, every time.Duration) (*poller, error) {
	if host, _, err := net.SplitHostPort(server); err != nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("%s is not a loopback address", server)
	}
	c := &dns.Client{Net: "udp", Timeout: 100 * time.Millisecond}
	conn, err := c.Dial(server)
	if err != nil {
		return nil, err
	}
	return &poller{client: c, conn: conn, every: every}, nil
}

func (p *poller) close() { p.conn.Close() }

// ask returns the A records of name, sorted, and when the answer arrived.
func (p *poller) ask(name string) ([]string, time.Time, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := p.client.ExchangeWithConn(m, p.conn)
	at := time.Now()
	if err != nil {
		return nil, at, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, at, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	var addrs []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	slices.Sort(addrs)
	return addrs, at, nil
}

// until asks every p.every until an answer satisfies want, and returns when
// that answer arrived and what it was; it gives up after within. Failed
// queries (a timeout under load) are skipped.
func (p *poller) until(name string, want func([]string) bool, within time.Duration) (time.Time, []string, error) {
	start := time.Now()
	var lastErr error
	var last []string
	for k := 1; time.Since(start) < within; k++ {
		a, at, err := p.ask(name)
		if err == nil && want(a) {
			return at, a, nil
		}
		if err != nil {
			lastErr = err
		} else {
			last = a
		}
		time.Sleep(time.Until(start.Add(time.Duration(k) * p.every)))
	}
	return time.Time{}, nil, fmt.Errorf("no such answer within %s (last answer %v, last error %v)", within, last, lastErr)
}

// holds asks every p.every for d, and reports the first answer that does
// not satisfy want, if any.
func (p *poller) holds(name string, want func([]string) bool, d time.Duration) (bool, []string) {
	start := time.Now()
	for k := 1; time.Since(start) < d; k++ {
		if a, _, err := p.ask(name); err == nil && !want(a) {
			return true, a
		}
		time.Sleep(time.Until(start.Add(time.Duration(k) * p.every)))
	}
	return false, nil
}
