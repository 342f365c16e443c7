package checker

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// method and header change the request, byte for byte; the operator's
// User-Agent and Accept replace the probe's.
func TestHTTPMethodAndHeadersOnTheWire(t *testing.T) {
	heads := make(chan string, 4)
	addr := rawServer(t, func(conn net.Conn) {
		head, _ := readRequest(conn)
		heads <- head
		conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	})
	s := quick(HTTP, addr)
	s.Path, s.Method = "/health", "HEAD"
	s.Headers = []Header{{"X-Token", "s3cret value"}, {"User-Agent", "probe/2"}, {"Accept", "application/json"}}
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200")
	want := "HEAD /health HTTP/1.1\r\nHost: " + addr + "\r\nX-Token: s3cret value\r\nUser-Agent: probe/2\r\n" +
		"Accept: application/json\r\nConnection: close\r\n\r\n"
	if got := <-heads; got != want {
		t.Errorf("request\n%q, want\n%q", got, want)
	}

	// A header given twice is sent twice.
	s.Method, s.Headers = "GET", []Header{{"X-Tag", "a"}, {"X-Tag", "b"}}
	probeOnce(t, s, Options{})
	if got := <-heads; !strings.Contains(got, "\r\nUser-Agent: healthfailover\r\n") || !strings.Contains(got, "\r\nX-Tag: a\r\nX-Tag: b\r\n") ||
		!strings.HasPrefix(got, "GET /health ") {
		t.Errorf("request %q", got)
	}
}

// HEAD against net/http: the answer's Content-Length announces a body that
// never comes, and the probe does not wait for it.
func TestHTTPHeadWithHeaders(t *testing.T) {
	var seen atomic.Value
	seen.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Method + " " + r.Header.Get("X-Token"))
		if r.Header.Get("X-Token") != "s3cret" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Length", "100000")
		if r.Method != http.MethodHead {
			w.Write(make([]byte, 100000))
		}
	}))
	t.Cleanup(srv.Close)
	s := quick(HTTP, srv.Listener.Addr().String())
	s.Method, s.Headers = "HEAD", []Header{{"X-Token", "s3cret"}}
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200")
	if got := seen.Load(); got != "HEAD s3cret" {
		t.Errorf("the server saw %q", got)
	}
	s.Headers = []Header{{"X-Token", "wrong"}}
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonStatus, "status 403")
}

// expect replaces 200-399 with its statuses and ranges; a redirect is
// still an answer, never followed.
func TestHTTPExpect(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	s := quick(HTTP, srv.addr())
	s.Expect = []StatusRange{{200, 200}, {204, 204}, {300, 302}}
	for _, c := range []struct {
		status int
		ok     bool
	}{{200, true}, {204, true}, {300, true}, {302, true}, {201, false}, {303, false}, {404, false}} {
		srv.set(c.status, "")
		reason := ReasonOK
		if !c.ok {
			reason = ReasonStatus
		}
		r := probeOnce(t, s, Options{})
		wantResult(t, r, c.ok, reason, fmt.Sprintf("status %d", c.status))
		if r.Status != c.status {
			t.Errorf("Status %d, want %d", r.Status, c.status)
		}
	}

	// A maintenance page that must say 503.
	s.Expect = []StatusRange{{503, 503}}
	srv.set(503, "down for maintenance")
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 503")

	var followed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	s = quick(HTTP, redirect.Listener.Addr().String())
	s.Expect = []StatusRange{{200, 200}}
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonStatus, "status 302")
	if followed.Load() != 0 {
		t.Error("the redirect was followed")
	}
}
