package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
)

// nginx is a real nginx on one loopback address that logs every request:
// the probes that reach a backend are counted from its access log.
type nginx struct {
	bin, ip string
	port    int
	prefix  string
	proc    *corednsproc.Process
}

func startNginx(bin, work, ip string, port int) (*nginx, error) {
	prefix := filepath.Join(work, "nginx-"+ip)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	n := &nginx{bin: bin, ip: ip, port: port, prefix: prefix}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // www-data may not exist in a container
	}
	p := prefix
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 1024; }
http {
    access_log %s/access.log;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    default_type text/plain;
    server {
        listen %s;
        location / { return 200 "OK\n"; }
    }
}
`, user, p, p, p, p, p, p, p, p, n.addr())
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return n, n.start()
}

func (n *nginx) addr() string { return net.JoinHostPort(n.ip, strconv.Itoa(n.port)) }

// start runs nginx and returns once its port accepts connections.
func (n *nginx) start() error {
	p, err := corednsproc.Run(n.bin, "-c", filepath.Join(n.prefix, "nginx.conf"), "-p", n.prefix,
		"-e", filepath.Join(n.prefix, "error.log"), "-g", "daemon off;")
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
			errLog, _ := os.ReadFile(filepath.Join(n.prefix, "error.log"))
			return fmt.Errorf("nginx on %s did not start: %s%s", n.addr(), errLog, p.Output())
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
func (n *nginx) requests() (int, error) {
	data, err := os.ReadFile(filepath.Join(n.prefix, "access.log"))
	if os.IsNotExist(err) {
		return 0, nil
	}
	return bytes.Count(data, []byte("\n")), err
}

// freePort finds a TCP port free on every one of ips.
func freePort(ips ...string) (int, error) {
	for port := 18100; port < 19000; port++ {
		if portFree(port, false, ips) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no TCP port free on %v", ips)
}
