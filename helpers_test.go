package healthfailover

import (
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/healthfailover/healthfailover/internal/syncbuf"
	"github.com/healthfailover/healthfailover/internal/testkit"
)

// The helpers of the unit tests that need a whole CoreDNS or a backend to
// probe. They are thin: the launcher, the backends and the clients are the
// ones the black-box tests in test/ use (internal/testkit,
// internal/fakebackend).

// backend is a loopback web server whose health flips at run time.
type backend struct {
	*fakebackend.HTTP
	URL string // http://IP:PORT
}

func newBackend(t *testing.T, body string) *backend {
	t.Helper()
	b := fakebackend.NewHTTP(t, fakebackend.Options{Body: body})
	return &backend{HTTP: b, URL: b.URL()}
}

// setUp makes the backend answer 200 (up) or 503 (down).
func (b *backend) setUp(up bool) { b.SetUp(up) }

// startCoreDNS runs an in-process CoreDNS on a Corefile and returns its UDP
// and TCP addresses; it is shut down at the test's end.
func startCoreDNS(t *testing.T, corefile string) (*caddy.Instance, string, string) {
	t.Helper()
	return testkit.StartCoreDNS(t, corefile)
}

// addresses asks a server for a name's A records.
func addresses(t *testing.T, network, server, name string) ([]string, int) {
	t.Helper()
	return testkit.Addresses(t, network, server, name)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return testkit.Eventually(t, within, what, cond)
}

func sameAnswer(got []string, want ...string) bool { return testkit.SameAnswer(got, want...) }

// captureLog copies what CoreDNS logs into a buffer, for the rest of the test.
func captureLog(t *testing.T) *syncbuf.Buffer { return testkit.CaptureLog(t) }

// httpGet fetches a URL; status 0 and the error's text when there is no response.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	return testkit.HTTPGet(t, url)
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	return testkit.FreeAddr(t)
}

// promtoolCheck lints the plugin's metrics with Prometheus's own linter.
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	testkit.PromtoolCheck(t, exposition)
}
