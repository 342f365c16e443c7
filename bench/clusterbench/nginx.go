package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/healthfailover/healthfailover/internal/loopback"
	"github.com/healthfailover/healthfailover/internal/nginxproc"
)

// nginx is a real nginx on one loopback address that logs every request:
// the probes that reach a backend are counted from its access log.
type nginx struct {
	bin  string
	conf nginxproc.Config
	proc *corednsproc.Process
}

func startNginx(bin, work, ip string, port int) (*nginx, error) {
	prefix := filepath.Join(work, "nginx-"+ip)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	n := &nginx{bin: bin, conf: nginxproc.Config{
		Prefix:      prefix,
		Listen:      net.JoinHostPort(ip, strconv.Itoa(port)),
		Connections: 1024,
		AccessLog:   true,
		Page:        "OK",
	}}
	if err := n.conf.Write(); err != nil {
		return nil, err
	}
	return n, n.start()
}

func (n *nginx) addr() string { return n.conf.Listen }

// start runs nginx and returns once its port accepts connections.
func (n *nginx) start() error {
	p, err := corednsproc.Run(n.bin, n.conf.Args()...)
	if err != nil {
		return err
	}
	n.proc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", n.addr(), 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		if p.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("nginx on %s did not start: %s%s", n.addr(), n.conf.ErrorLog(), p.Output())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop is nginx's fast shutdown; it returns once the master has exited.
func (n *nginx) stop() {
	if n.proc != nil {
		n.proc.Stop(syscall.SIGTERM, 10*time.Second)
	}
}

// requests is how many requests nginx has logged.
func (n *nginx) requests() (int, error) { return n.conf.Requests("") }

// freePort finds a TCP port free on every one of ips.
func freePort(ips ...string) (int, error) {
	for port := 18100; port < 19000; port++ {
		if loopback.Free(port, false, ips...) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no TCP port free on %v", ips)
}
