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
