// Package loopback finds free ports on loopback addresses for the servers
// the demo, the end-to-end tests and the benchmarks start.
package loopback

import (
	"errors"
	"io"
	"net"
	"strconv"
)

// DNSPort returns a port free for both UDP and TCP on every address, for
// CoreDNS to bind: a server block without *bind* listens on all of them, so
// a port free on 127.0.0.1 alone may be held on another loopback address
// (by tests running beside, whose servers have addresses of their own).
func DNSPort() (int, error) {
	for range 100 {
		u, err := net.ListenPacket("udp", ":0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		u.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both UDP and TCP on every address")
}

// TCPPort returns a TCP port free on 127.0.0.1.
func TCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Free tells whether port is free for TCP, and with udp for UDP too, on
// every one of ips: servers on several addresses can then share it.
func Free(port int, udp bool, ips ...string) bool {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		held = append(held, l)
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			held = append(held, u)
		}
	}
	return true
}
