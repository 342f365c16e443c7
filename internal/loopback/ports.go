// Package loopback finds free ports on 127.0.0.1 for the servers the
// demo, the end-to-end tests and the benchmarks start.
package loopback

import (
	"errors"
	"net"
	"strconv"
)

// DNSPort returns a port free for both UDP and TCP on 127.0.0.1, for
// CoreDNS to bind.
func DNSPort() (int, error) {
	for range 100 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both UDP and TCP on 127.0.0.1")
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
