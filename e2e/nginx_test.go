package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/healthfailover/healthfailover/internal/nginxproc"
)

// webServer is one real nginx process serving a fixed page and /health on
// one loopback address: one region of a service.
type webServer struct {
	name   string // what its page says, e.g. "US EAST"
	ip     string
	port   int
	prefix string // nginx's -p directory: config, pid file, error log, temp dirs
	conf   string

	proc *corednsproc.Process // nginx in the foreground, its output kept
}

// startWebServer writes an nginx config for ip:port and starts it. The
// process is stopped when the test ends, whatever happened.
func startWebServer(t *testing.T, name, ip string, port int) *webServer {
	t.Helper()
	prefix, err := os.MkdirTemp("", "e2e-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	// nginx's worker may run as another user; it must read its prefix.
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &webServer{name: name, ip: ip, port: port, prefix: prefix, conf: filepath.Join(prefix, "nginx.conf")}
	if err := os.WriteFile(w.conf, []byte(w.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.kill(t)
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			out := ""
			if w.proc != nil {
				out = w.proc.Output()
			}
			t.Logf("nginx %s (%s:%d) error.log:\n%s%s", name, ip, port, errLog, out)
		}
		os.RemoveAll(prefix)
	})
	w.start(t)
	return w
}

// config is a self-contained nginx configuration (internal/nginxproc):
// everything nginx writes (pid, logs, temp files) stays in the prefix, so no
// root-owned default path is needed and parallel servers do not collide.
func (w *webServer) config() string {
	return nginxproc.Config{Prefix: w.prefix, Listen: w.addr(), Connections: 64, Health: true, Page: w.name}.String()
}

func (w *webServer) addr() string { return net.JoinHostPort(w.ip, strconv.Itoa(w.port)) }

// start runs nginx in the foreground and returns once its port accepts
// connections.
func (w *webServer) start(t *testing.T) {
	t.Helper()
	p, err := corednsproc.Run(nginxBin, "-c", w.conf, "-p", w.prefix, "-e", filepath.Join(w.prefix, "error.log"), "-g", "daemon off;")
	if err != nil {
		t.Fatalf("start nginx %s: %v", w.name, err)
	}
	w.proc = p

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", w.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.Done():
			errLog, _ := os.ReadFile(filepath.Join(w.prefix, "error.log"))
			t.Fatalf("nginx %s exited at start (%v):\n%s%s", w.name, p.State(), errLog, p.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx %s does not accept connections on %s: %v", w.name, w.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop is "stop the primary": nginx's fast shutdown (SIGTERM,
// as `nginx -s stop` sends), waiting until the master has exited, after which
// the port refuses connections.
func (w *webServer) stop(t *testing.T) {
	t.Helper()
	if err := w.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop nginx %s: %v", w.name, err)
	}
	select {
	case <-w.proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("nginx %s still running 10s after SIGTERM", w.name)
	}
	if c, err := net.DialTimeout("tcp", w.addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("nginx %s has exited but %s still accepts connections", w.name, w.addr())
	}
}

// kill ends the process if it still runs: SIGTERM first so nginx takes its
// worker with it, SIGKILL if it does not go.
func (w *webServer) kill(t *testing.T) {
	if w.proc != nil && !w.proc.Stop(syscall.SIGTERM, 5*time.Second) {
		t.Logf("nginx %s ignored SIGTERM; killed it", w.name)
	}
}

// freeSharedPort finds one TCP port free on every one of ips, so that the
// regions differ only in their address, as one service's sites do. It tries
// a range outside the kernel's ephemeral ports first: a port nginx gives up
// when it is stopped is then unlikely to be taken by someone's outgoing
// connection before it starts again.
func freeSharedPort(t *testing.T, ips ...string) int {
	t.Helper()
	for port := 18080; port < 18999; port++ {
		if portFreeOn(port, ips) {
			return port
		}
	}
	t.Fatalf("no TCP port in 18080-18998 is free on all of %v", ips)
	return 0
}

func portFreeOn(port int, ips []string) bool {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		held = append(held, l)
	}
	return true
}
