package fakebackend

import "net"

// T is what the New* helpers need of a *testing.T (or B): they fail it if a
// server cannot start and close the server when it ends.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewHTTP starts an HTTP backend for a test.
func NewHTTP(t T, o Options) *HTTP {
	t.Helper()
	b, err := StartHTTP(o)
	if err != nil {
		t.Fatalf("fake backend: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// NewHTTPShared starts HTTP backends on one port for a test (see StartHTTPShared).
func NewHTTPShared(t T, opts ...Options) []*HTTP {
	t.Helper()
	bs, err := StartHTTPShared(opts...)
	if err != nil {
		t.Fatalf("fake backends: %v", err)
	}
	for _, b := range bs {
		t.Cleanup(b.Close)
	}
	return bs
}

// NewTCP starts a raw TCP server on 127.0.0.1 for a test.
func NewTCP(t T, handle func(c net.Conn, done <-chan struct{})) *TCP {
	t.Helper()
	s, err := StartTCP("", handle)
	if err != nil {
		t.Fatalf("fake TCP server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewBlackHole starts a black hole on 127.0.0.1 for a test.
func NewBlackHole(t T) *TCP {
	t.Helper()
	s, err := StartBlackHole("")
	if err != nil {
		t.Fatalf("black hole: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewClosedPort returns an address on 127.0.0.1 where nothing listens.
func NewClosedPort(t T) string {
	t.Helper()
	addr, err := ClosedPort("")
	if err != nil {
		t.Fatalf("closed port: %v", err)
	}
	return addr
}

// NewNeverAccepting returns an address on 127.0.0.1 whose connects time
// out, for the length of a test.
func NewNeverAccepting(t T) string {
	t.Helper()
	n, err := StartNeverAccepting()
	if err != nil {
		t.Fatalf("never-accepting listener: %v", err)
	}
	t.Cleanup(n.Close)
	return n.Addr()
}
