package corednsproc

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeCoreDNS is what stands in for CoreDNS here: the shell, told what to do.
func fakeCoreDNS(t *testing.T) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	return sh
}

func TestRunKeepsOutputAndStops(t *testing.T) {
	p, err := Run(fakeCoreDNS(t), "-c", `echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("output %q", p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !p.Stop(syscall.SIGTERM, 10*time.Second) || !p.State().Success() || !strings.Contains(p.Output(), "bye") {
		t.Errorf("stop: state %v, output %q", p.State(), p.Output())
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	p, err := Run(fakeCoreDNS(t), "-c", `trap '' TERM; echo started; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.Output(), "started") {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Stop(syscall.SIGTERM, 100*time.Millisecond) || !p.Exited() {
		t.Errorf("a process that ignores SIGTERM: stopped gracefully %v", p.Exited())
	}
}

func TestStartWritesCorefile(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(fakeCoreDNS(t), dir, "example.org {\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done() // sh -conf FILE fails: sh has no -conf option
	data, err := os.ReadFile(dir + "/Corefile")
	if err != nil || string(data) != "example.org {\n}\n" {
		t.Errorf("Corefile %q %v", data, err)
	}
}

func TestWaitReady(t *testing.T) {
	var ready atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "healthfailover", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	p, err := Run(fakeCoreDNS(t), "-c", `while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(syscall.SIGKILL, time.Second) })
	if err := p.WaitReady(ln.Addr().String(), 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("not ready: %v, want the last 503 reported", err)
	}
	ready.Store(true)
	if err := p.WaitReady(ln.Addr().String(), 10*time.Second); err != nil {
		t.Error(err)
	}
	p.Stop(syscall.SIGKILL, time.Second)
	if err := p.WaitReady(ln.Addr().String(), 10*time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("after exit: %v", err)
	}
}
