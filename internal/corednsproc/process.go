// Package corednsproc runs a built CoreDNS binary (or any program beside it,
// such as a load generator) as a child process with its output kept, and
// waits for CoreDNS's /ready: the launcher of the end-to-end tests and the
// benchmarks.
package corednsproc

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/healthfailover/healthfailover/internal/syncbuf"
)

// Process is a child process whose standard output and error are kept.
type Process struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{} // closed once the process has been waited for
}

// Run starts name with args.
func Run(name string, args ...string) (*Process, error) {
	return run(exec.Command(name, args...))
}

// Start writes corefile to dir/Corefile and runs the CoreDNS binary bin on
// it, in dir.
func Start(bin, dir, corefile string) (*Process, error) {
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Dir = dir
	return run(cmd)
}

func run(cmd *exec.Cmd) (*Process, error) {
	p := &Process{cmd: cmd, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Output is everything the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited tells whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// State is the exit state, once Done is closed.
func (p *Process) State() *os.ProcessState { return p.cmd.ProcessState }

// Pid is the process's id, for what /proc tells of it (CPU time).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends sig and waits for the process to exit; if it is still running
// after grace, it is killed and Stop returns false.
func (p *Process) Stop(sig os.Signal, grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	p.cmd.Process.Signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// WaitReady polls the ready plugin at readyAddr (HOST:PORT) until it says
// 200, i.e. every plugin that reports readiness is ready (for healthfailover:
// every check has had its first probe). It fails if the process exits first
// or within passes.
func (p *Process) WaitReady(readyAddr string, within time.Duration) error {
	return waitReady(readyAddr, within, func() error {
		if p.Exited() {
			return fmt.Errorf("CoreDNS exited at start (%v):\n%s", p.State(), p.Output())
		}
		return nil
	})
}

// WaitReady polls the ready plugin at readyAddr until it says 200, for a
// CoreDNS that is not a child process (one running in this process).
func WaitReady(readyAddr string, within time.Duration) error {
	return waitReady(readyAddr, within, func() error { return nil })
}

func waitReady(readyAddr string, within time.Duration, exited func() error) error {
	deadline := time.Now().Add(within)
	for {
		if err := exited(); err != nil {
			return err
		}
		code, body, err := ReadyStatus(readyAddr)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CoreDNS not ready within %s: last /ready: status %d %q, error %v", within, code, body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ReadyStatus is the ready plugin's answer at readyAddr: 200 once every
// plugin that reports readiness is ready, 503 with their names before.
func ReadyStatus(readyAddr string) (int, string, error) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + readyAddr + "/ready")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}
