// Package test has the black-box tests of healthfailover: a whole CoreDNS,
// started in this process on a Corefile, that the tests talk to only as
// its users do, through DNS, its HTTP endpoints (status, metrics, ready)
// and its log.
package test

import (
	"testing"

	_ "github.com/healthfailover/healthfailover" // registers the plugin
	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/healthfailover/healthfailover/internal/testkit"
)

var (
	startCoreDNS  = testkit.StartCoreDNS
	restart       = testkit.Restart
	addresses     = testkit.Addresses
	sameAnswer    = testkit.SameAnswer
	eventually    = testkit.Eventually
	httpGet       = testkit.HTTPGet
	captureLog    = testkit.CaptureLog
	freeAddr      = testkit.FreeAddr
	promtoolCheck = testkit.PromtoolCheck
)

// newBackend is a loopback web server that answers body with 200 while up
// and 503 while down.
func newBackend(t *testing.T, body string) *fakebackend.HTTP {
	t.Helper()
	return fakebackend.NewHTTP(t, fakebackend.Options{Body: body})
}
