package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/loopback"
	"github.com/healthfailover/healthfailover/internal/syncbuf"
)

// corednsProc is the CoreDNS binary built by TestMain, running on a Corefile.
type corednsProc struct {
	cmd       *exec.Cmd
	out       *syncbuf.Buffer // CoreDNS's log: transitions, errors
	dnsAddr   string          // 127.0.0.1:PORT, UDP and TCP
	readyAddr string          // 127.0.0.1:PORT of the ready plugin
	corefile  string
	done      chan struct{} // closed once the process has been waited for
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
	dir := t.TempDir()
	c := &corednsProc{
		out:       &syncbuf.Buffer{},
		dnsAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort)),
		readyAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(readyPort)),
		corefile:  corefile,
		done:      make(chan struct{}),
	}
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(corednsBin, "-conf", conf)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.terminate(t)
		if t.Failed() {
			t.Logf("Corefile:\n%s\nCoreDNS output:\n%s", c.corefile, c.out)
		}
	})
	if waitReady {
		c.waitReady(t, 15*time.Second)
	}
	return c
}

// readyStatus is the ready plugin's answer: 200 once every plugin that
// reports readiness is ready, 503 before.
func (c *corednsProc) readyStatus() (int, string, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + c.readyAddr + "/ready")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

func (c *corednsProc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		select {
		case <-c.done:
			t.Fatalf("CoreDNS exited at start (%v)", c.cmd.ProcessState)
		default:
		}
		code, body, err := c.readyStatus()
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("status %d %q, error %v", code, body, err)
		if time.Now().After(deadline) {
			t.Fatalf("CoreDNS not ready within %s: last /ready: %s", within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sigterm sends SIGTERM and returns how long the process took to exit and
// its exit status, or fails the test if it is still running after within.
func (c *corednsProc) sigterm(t *testing.T, within time.Duration) (time.Duration, *os.ProcessState) {
	t.Helper()
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM CoreDNS: %v", err)
	}
	select {
	case <-c.done:
		return time.Since(start), c.cmd.ProcessState
	case <-time.After(within):
		t.Fatalf("CoreDNS still running %s after SIGTERM", within)
		return 0, nil
	}
}

// terminate stops the process at the end of a test, whatever its state.
func (c *corednsProc) terminate(t *testing.T) {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Errorf("CoreDNS still running 10s after SIGTERM; killing it")
		c.cmd.Process.Kill()
		<-c.done
	}
}

// waitLog waits until CoreDNS's output contains s: the log line is written
// before the answer changes, but reaches us through a pipe.
func (c *corednsProc) waitLog(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(c.out.String(), s) {
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
