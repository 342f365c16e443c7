// Package testkit has the helpers the plugin's tests share: an in-process
// CoreDNS stopped at the test's end, DNS and HTTP clients that talk to it,
// a deadline poll, a capture of the log, and Prometheus's metrics linter.
package testkit

import (
	"bytes"
	"io"
	stdlog "log"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/healthfailover/healthfailover/internal/syncbuf"
	"github.com/miekg/dns"
)

// StartCoreDNS runs an in-process CoreDNS on a Corefile and returns its
// first server's UDP and TCP addresses. It is shut down at the test's end
// as on SIGTERM (the plugins' shutdown, then the servers); so is every
// instance a reload (Restart) puts in its place.
func StartCoreDNS(t testing.TB, corefile string) (*caddy.Instance, string, string) {
	t.Helper()
	i, err := inprocess.Start(corefile)
	if err != nil {
		t.Fatalf("could not start CoreDNS: %v", err)
	}
	t.Cleanup(func() { inprocess.Stop(i) })
	udp, tcp := inprocess.Addrs(i, 0)
	return i, udp, tcp
}

// Restart reloads an instance with a new Corefile, as the reload plugin
// does, and fails the test if the reload is refused.
func Restart(t testing.TB, i *caddy.Instance, corefile string) *caddy.Instance {
	t.Helper()
	next, err := i.Restart(inprocess.Input(corefile))
	if err != nil {
		t.Fatalf("reload refused: %v", err)
	}
	t.Cleanup(func() { inprocess.Stop(next) })
	return next
}

// Addresses asks a server for a name's A records; it returns them with the
// rcode, and fails the test if no reply came.
func Addresses(t testing.TB, network, server, name string) ([]string, int) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s over %s: %v", name, network, err)
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips, r.Rcode
}

// SameAnswer tells whether got holds exactly the addresses want, in any order.
func SameAnswer(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}

// Eventually polls cond until it holds, and fails the test if it does not
// within the deadline. The time it took is for the log, never for an
// assertion.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

// HTTPGet fetches a URL on a fresh connection, ignoring proxy settings;
// status 0 and the error's text when there is no response.
func HTTPGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// CaptureLog copies what CoreDNS logs (through the standard logger) into a
// buffer, for the rest of the test.
func CaptureLog(t testing.TB) *syncbuf.Buffer {
	b := &syncbuf.Buffer{}
	stdlog.SetOutput(io.MultiWriter(b, os.Stderr))
	t.Cleanup(func() { stdlog.SetOutput(os.Stderr) })
	return b
}

// FreeAddr returns a loopback address nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fakebackend.NewClosedPort(t)
}

// PromtoolCheck lints the plugin's metrics with Prometheus's own linter. It
// skips without promtool, except in CI, where that fails.
func PromtoolCheck(t testing.TB, exposition string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus); skipping the metrics lint")
	}
	// Only this plugin's families: CoreDNS's own are not ours to lint.
	var ours strings.Builder
	for _, line := range strings.SplitAfter(exposition, "\n") {
		if strings.Contains(line, "coredns_healthfailover_") {
			ours.WriteString(line)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(ours.String())
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
