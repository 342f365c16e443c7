package fakebackend

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

func get(url string, timeout time.Duration) (int, string, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestHTTPSwitches(t *testing.T) {
	for _, tc := range []struct {
		failure Failure
		status  int
	}{{Unavailable, 503}, {InternalError, 500}} {
		b := NewHTTP(t, Options{Body: "US EAST", Failure: tc.failure})
		if code, body, err := get(b.URL()+"/", time.Second); err != nil || code != 200 || body != "US EAST" {
			t.Fatalf("up: %d %q %v", code, body, err)
		}
		b.SetUp(false)
		if code, _, err := get(b.URL()+"/", time.Second); err != nil || code != tc.status {
			t.Errorf("down: %d %v, want %d", code, err, tc.status)
		}
		b.SetUp(true)
		if code, _, err := get(b.URL()+"/", time.Second); err != nil || code != 200 {
			t.Errorf("up again: %d %v", code, err)
		}
		if b.Requests() != 3 {
			t.Errorf("%d requests counted, want 3", b.Requests())
		}
	}
}

func TestHTTPRefuseListensAgainOnTheSameAddress(t *testing.T) {
	b := NewHTTP(t, Options{Body: "OK", Failure: Refuse})
	addr := b.Addr()
	if err := b.SetUp(false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(b.URL()+"/", time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down: %v, want connection refused", err)
	}
	if err := b.SetUp(true); err != nil {
		t.Fatal(err)
	}
	if code, body, err := get(b.URL()+"/", time.Second); err != nil || code != 200 || body != "OK" || b.Addr() != addr {
		t.Errorf("up again at %s (was %s): %d %q %v", b.Addr(), addr, code, body, err)
	}
}

func TestHTTPHangEndsWithTheClient(t *testing.T) {
	b := NewHTTP(t, Options{Failure: Hang})
	b.SetUp(false)
	if _, _, err := get(b.URL()+"/", 100*time.Millisecond); err == nil {
		t.Fatal("a hanging backend answered")
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Held() != 0 { // the handler lets go once the client has
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still held after the client gave up", b.Held())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHTTPSteady(t *testing.T) {
	b := NewHTTP(t, Options{})
	t0 := time.Now()
	if up, ok := b.Steady(t0, t0); !ok || !up {
		t.Errorf("steady since the start: up=%t ok=%t", up, ok)
	}
	b.SetUp(false)
	t1 := time.Now()
	if _, ok := b.Steady(t0, t1); ok {
		t.Error("steady across a switch")
	}
	if up, ok := b.Steady(t1, time.Now()); !ok || up {
		t.Errorf("steady after the switch: up=%t ok=%t", up, ok)
	}
	if _, ok := b.Steady(t0.Add(-time.Hour), t0); ok {
		t.Error("steady before it started")
	}
}

func TestHTTPShared(t *testing.T) {
	bs := NewHTTPShared(t, Options{IP: "127.0.0.1", Body: "a"}, Options{IP: "127.0.0.2", Body: "b"})
	if bs[0].Port() != bs[1].Port() || bs[1].IP() != "127.0.0.2" {
		t.Fatalf("addresses %s and %s", bs[0].Addr(), bs[1].Addr())
	}
	for i, want := range []string{"a", "b"} {
		if _, body, err := get(bs[i].URL()+"/", time.Second); err != nil || body != want {
			t.Errorf("%s: %q %v, want %q", bs[i].Addr(), body, err, want)
		}
	}
}

func TestNotLoopbackRefused(t *testing.T) {
	if _, err := StartHTTP(Options{IP: "192.0.2.1"}); err == nil {
		t.Error("a backend outside loopback was started")
	}
}

func TestBlackHole(t *testing.T) {
	h := NewBlackHole(t)
	c, err := net.Dial("tcp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-h.Accepted():
	case <-time.After(5 * time.Second):
		t.Fatal("the black hole did not accept")
	}
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var b [1]byte
	if _, err := c.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from a black hole: %v, want a timeout", err)
	}
	h.Close() // returns: the handler ends with its connection
}

func TestClosedPortRefuses(t *testing.T) {
	if _, err := net.Dial("tcp", NewClosedPort(t)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial: %v, want connection refused", err)
	}
}

func TestNeverAcceptingTimesOut(t *testing.T) {
	_, err := net.DialTimeout("tcp", NewNeverAccepting(t), 100*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial: %v, want a timeout", err)
	}
}
