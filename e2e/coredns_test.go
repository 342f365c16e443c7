package e2e

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/healthfailover/healthfailover/internal/loopback"
)

// corednsProc is the CoreDNS binary built by TestMain, running on a Corefile.
type corednsProc struct {
	*corednsproc.Process        // its log (Output): transitions, errors
	dnsAddr              string // 127.0.0.1:PORT, UDP and TCP
	readyAddr            string // 127.0.0.1:PORT of the ready plugin
	corefile             string
}

// corefileFor puts a healthfailover block into the server block every test
// uses: example.org on loopback only, with ready for /ready, and the extra
// directives a test wants beside the plugin (such as cache).
func corefileFor(dnsPort, readyPort int, extra, block string) string {
	return fmt.Sprintf(`example.org:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    %s
    healthfailover example.org {
%s
    }
}
`, dnsPort, readyPort, extra, block)
}

// startCoreDNS runs CoreDNS on a Corefile made of extra and block (see
// corefileFor) and, if waitReady, returns once /ready says 200, i.e. once
// every check has had its first probe.
func startCoreDNS(t *testing.T, extra, block string, waitReady bool) *corednsProc {
	t.Helper()
	dnsPort, readyPort := freeDNSPort(t), freeTCPPort(t)
	return startCorefile(t, corefileFor(dnsPort, readyPort, extra, block), dnsPort, readyPort, waitReady)
}

// startCorefile runs CoreDNS on a whole Corefile that serves DNS on dnsPort
// and /ready on readyPort. It is stopped when the test ends; its log is
// printed if the test failed.
func startCorefile(t *testing.T, corefile string, dnsPort, readyPort int, waitReady bool) *corednsProc {
	t.Helper()
	p, err := corednsproc.Start(corednsBin, t.TempDir(), corefile)
	if err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	c := &corednsProc{
		Process:   p,
		dnsAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort)),
		readyAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(readyPort)),
		corefile:  corefile,
	}
	t.Cleanup(func() {
		if !c.Stop(syscall.SIGTERM, 10*time.Second) {
			t.Errorf("CoreDNS still running 10s after SIGTERM; killed it")
		}
		if t.Failed() {
			t.Logf("Corefile:\n%s\nCoreDNS output:\n%s", c.corefile, c.Output())
		}
	})
	if waitReady {
		if err := c.WaitReady(c.readyAddr, 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// readyStatus is the ready plugin's answer: 200 once every plugin that
// reports readiness is ready, 503 before.
func (c *corednsProc) readyStatus() (int, string, error) { return corednsproc.ReadyStatus(c.readyAddr) }

// sigterm sends SIGTERM and returns how long the process took to exit and
// its exit status, or fails the test if it is still running after within.
func (c *corednsProc) sigterm(t *testing.T, within time.Duration) (time.Duration, *os.ProcessState) {
	t.Helper()
	start := time.Now()
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM CoreDNS: %v", err)
	}
	select {
	case <-c.Done():
		return time.Since(start), c.State()
	case <-time.After(within):
		t.Fatalf("CoreDNS still running %s after SIGTERM", within)
		return 0, nil
	}
}

// waitLog waits until CoreDNS's output contains s: the log line is written
// before the answer changes, but reaches us through a pipe.
func (c *corednsProc) waitLog(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(c.Output(), s) {
		if time.Now().After(deadline) {
			t.Errorf("CoreDNS log has no %q within %s", s, within)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeDNSPort finds a port free for both UDP and TCP on 127.0.0.1.
func freeDNSPort(t *testing.T) int {
	t.Helper()
	port, err := loopback.DNSPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	port, err := loopback.TCPPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
