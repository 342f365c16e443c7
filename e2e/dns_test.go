package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// reply is what one client saw for an A query.
type reply struct {
	rcode string   // "NOERROR", "SERVFAIL", …
	addrs []string // the A records of the answer, sorted
	aa    bool     // the authoritative flag
	soa   bool     // an SOA in the authority section
}

func (r reply) String() string {
	return fmt.Sprintf("%s %v aa=%t soa-in-authority=%t", r.rcode, r.addrs, r.aa, r.soa)
}

// client is one way of asking: dig and miekg/dns, each over UDP and TCP, so
// that a transport-specific bug in the server path cannot hide.
type client struct {
	name  string
	query func(server, name string) (reply, error)
}

var clients = []client{
	{"dig", func(s, n string) (reply, error) { return digQuery(s, n, false) }},
	{"dig +tcp", func(s, n string) (reply, error) { return digQuery(s, n, true) }},
	{"miekg/dns udp", func(s, n string) (reply, error) { return dnsQuery(s, n, "udp") }},
	{"miekg/dns tcp", func(s, n string) (reply, error) { return dnsQuery(s, n, "tcp") }},
}

func dnsQuery(server, name, network string) (reply, error) {
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return reply{}, err
	}
	out := reply{rcode: dns.RcodeToString[r.Rcode], aa: r.Authoritative, addrs: []string{}}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out.addrs = append(out.addrs, a.A.String())
		}
	}
	for _, rr := range r.Ns {
		if _, ok := rr.(*dns.SOA); ok {
			out.soa = true
		}
	}
	slices.Sort(out.addrs)
	return out, nil
}

var (
	digStatus = regexp.MustCompile(`status: ([A-Z]+)`)
	digFlags  = regexp.MustCompile(`;; flags: ([a-z ]*);`)
)

// digQuery runs dig as a user would and reads its full output: the header
// for the status and flags, the answer and authority sections for records.
func digQuery(server, name string, tcp bool) (reply, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return reply{}, err
	}
	args := []string{"@" + host, "-p", port, "+tries=1", "+time=2"}
	if tcp {
		args = append(args, "+tcp")
	}
	args = append(args, name, "A")
	out, err := exec.Command(digBin, args...).CombinedOutput()
	if err != nil {
		return reply{}, fmt.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return parseDig(string(out))
}

func parseDig(out string) (reply, error) {
	r := reply{addrs: []string{}}
	m := digStatus.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no status in dig output:\n%s", out)
	}
	r.rcode = m[1]
	if f := digFlags.FindStringSubmatch(out); f != nil {
		r.aa = slices.Contains(strings.Fields(f[1]), "aa")
	}
	section := ""
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, ";; ") && strings.HasSuffix(line, "SECTION:"):
			section = strings.Fields(line)[1]
			continue
		case line == "" || strings.HasPrefix(line, ";"):
			if line == "" {
				section = ""
			}
			continue
		}
		// NAME TTL CLASS TYPE VALUE
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		switch {
		case section == "ANSWER" && f[3] == "A":
			r.addrs = append(r.addrs, f[4])
		case section == "AUTHORITY" && f[3] == "SOA":
			r.soa = true
		}
	}
	slices.Sort(r.addrs)
	return r, nil
}

// digShort is the command a user types: dig +short, one address a line.
func digShort(server, name string, tcp bool) ([]string, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return nil, err
	}
	args := []string{"@" + host, "-p", port, "+short", "+tries=1", "+time=2"}
	if tcp {
		args = append(args, "+tcp")
	}
	args = append(args, name, "A")
	out, err := exec.Command(digBin, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	addrs := strings.Fields(string(out))
	slices.Sort(addrs)
	return addrs, nil
}

// expectAddrs asks every client and wants the same authoritative answer
// from each: exactly the addresses want, in any order.
func expectAddrs(t *testing.T, c *corednsProc, name string, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	for _, cl := range clients {
		r, err := cl.query(c.dnsAddr, name)
		if err != nil {
			t.Errorf("%s %s: %v", cl.name, name, err)
			continue
		}
		if r.rcode != "NOERROR" || !slices.Equal(r.addrs, want) || !r.aa {
			t.Errorf("%s %s: got %s, want NOERROR %v aa=true", cl.name, name, r, want)
		}
	}
	for _, tcp := range []bool{false, true} {
		got, err := digShort(c.dnsAddr, name, tcp)
		if err != nil {
			t.Errorf("%v", err)
		} else if !slices.Equal(got, want) {
			t.Errorf("dig +short (tcp=%t) %s: got %v, want %v", tcp, name, got, want)
		}
	}
}

// expectReply asks every client and checks each reply with ok.
func expectReply(t *testing.T, c *corednsProc, name, what string, ok func(reply) bool) {
	t.Helper()
	for _, cl := range clients {
		r, err := cl.query(c.dnsAddr, name)
		if err != nil {
			t.Errorf("%s %s: %v", cl.name, name, err)
			continue
		}
		if !ok(r) {
			t.Errorf("%s %s: got %s, want %s", cl.name, name, r, what)
		}
	}
}

// waitAddrs polls over UDP every 50 ms until name answers exactly want and
// returns the time since since, to report. It gives up after within, which
// is set well above the time a change should take so that a slow failover
// is measured and reported, not just declared missing.
func waitAddrs(t *testing.T, c *corednsProc, name string, since time.Time, within time.Duration, want ...string) time.Duration {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	return waitReply(t, c, name, since, within, fmt.Sprintf("NOERROR %v", want), func(r reply) bool {
		return r.rcode == "NOERROR" && slices.Equal(r.addrs, want)
	})
}

func waitReply(t *testing.T, c *corednsProc, name string, since time.Time, within time.Duration, what string, ok func(reply) bool) time.Duration {
	t.Helper()
	deadline := since.Add(within)
	var last string
	for {
		r, err := dnsQuery(c.dnsAddr, name, "udp")
		if err == nil && ok(r) {
			return time.Since(since)
		}
		last = r.String()
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within %s; last answer: %s", name, what, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetchPage is a browser: an HTTP GET to the address DNS gave,
// on a fresh connection, ignoring proxy settings of the environment.
func fetchPage(ip string, port int) (string, error) {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	resp, err := client.Get("http://" + net.JoinHostPort(ip, strconv.Itoa(port)) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// expectPages fetches the page from every address and wants each to be the
// page of the server there: every address DNS hands out must serve.
func expectPages(t *testing.T, addrs []string, port int, pageOf map[string]string) {
	t.Helper()
	for _, ip := range addrs {
		got, err := fetchPage(ip, port)
		if err != nil {
			t.Errorf("page at %s (from DNS): %v", ip, err)
		} else if got != pageOf[ip] {
			t.Errorf("page at %s: %q, want %q", ip, got, pageOf[ip])
		}
	}
}

// answerOf is the current UDP answer, for pages to fetch.
func answerOf(t *testing.T, c *corednsProc, name string) []string {
	t.Helper()
	r, err := dnsQuery(c.dnsAddr, name, "udp")
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	return r.addrs
}

// report puts a measured time where it is seen: the test log (-v or on
// failure) and the test's standard output.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Log(msg)
	fmt.Printf("%s: %s\n", t.Name(), msg)
}
