package loopback

import (
	"net"
	"testing"
)

func TestFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if Free(port, false, "127.0.0.1") {
		t.Errorf("port %d is taken on 127.0.0.1 but Free says it is free", port)
	}
	l.Close()
	if !Free(port, false, "127.0.0.1") {
		t.Errorf("port %d is free again but Free says it is taken", port)
	}

	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	port = u.LocalAddr().(*net.UDPAddr).Port
	if Free(port, true, "127.0.0.1") {
		t.Errorf("UDP port %d is taken but Free with udp says it is free", port)
	}
}

// A server block without bind listens on every address: the port must be
// free there for UDP and TCP, not only on 127.0.0.1.
func TestDNSPortIsFreeOnEveryAddress(t *testing.T) {
	for range 20 {
		port, err := DNSPort()
		if err != nil {
			t.Fatal(err)
		}
		if !Free(port, true, "0.0.0.0") {
			t.Fatalf("port %d is not free for UDP and TCP on every address", port)
		}
	}
}
