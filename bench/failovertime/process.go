package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/syncbuf"
)

// process is a child process (CoreDNS, dnsperf) with its output kept.
type process struct {
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

func startProcess(name string, args ...string) (*process, error) {
	p := &process{cmd: exec.Command(name, args...), out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, and kills the process if it has not ended within 5 s.
func (p *process) stop(sig os.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls the ready plugin until it says 200, CoreDNS exits, or within passes.
func waitReady(p *process, readyAddr string, within time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("CoreDNS exited at start:\n%s", p.out)
		}
		resp, err := client.Get("http://" + readyAddr + "/ready")
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("CoreDNS not ready within %s (last /ready: %s)", within, last)
}

// dnsperfLoad is dnsperf holding a steady query rate in the background.
type dnsperfLoad struct {
	p *process
}

func startLoad(dnsperf, server string, port, qps int, queries string, limit time.Duration) (*dnsperfLoad, error) {
	p, err := startProcess(dnsperf, "-s", server, "-p", strconv.Itoa(port), "-d", queries,
		"-Q", strconv.Itoa(qps), "-c", "2", "-T", "1", "-t", "1",
		"-l", strconv.Itoa(int(limit.Seconds())+1))
	if err != nil {
		return nil, err
	}
	return &dnsperfLoad{p: p}, nil
}

var (
	dnsperfQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	dnsperfLost = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	dnsperfSent = regexp.MustCompile(`Queries sent:\s+([0-9]+)`)
	dnsperfCode = regexp.MustCompile(`Response codes:\s+(.*)`)
)

// finish stops dnsperf (SIGINT makes it print its statistics) and returns
// a one-line summary.
func (l *dnsperfLoad) finish() string {
	if !l.p.exited() {
		l.p.stop(syscall.SIGINT)
	}
	out := l.p.out.String()
	get := func(re *regexp.Regexp) string {
		if m := re.FindStringSubmatch(out); m != nil {
			return m[1]
		}
		return "?"
	}
	return fmt.Sprintf("%s QPS, %s sent, %s lost, response codes: %s", get(dnsperfQPS), get(dnsperfSent), get(dnsperfLost), get(dnsperfCode))
}
