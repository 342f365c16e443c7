package checker

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// quick gives a spec short timeouts, so that failures are fast.
func quick(kind Kind, addr string) Spec {
	s := Spec{Kind: kind, Address: addr, ConnectTimeout: time.Second}
	if kind != TCP {
		s.ResponseTimeout = 150 * time.Millisecond
	}
	return s
}

func wantResult(t *testing.T, r Result, ok bool, reason Reason, message string) {
	t.Helper()
	if r.OK != ok || r.Reason != reason || r.Message != message {
		t.Fatalf("got OK=%v %s %.200q, want OK=%v %s %q", r.OK, r.Reason, r.Message, ok, reason, message)
	}
}

func TestHTTPStatus(t *testing.T) {
	srv := newFlipServer(t, 200, "fine")
	s := quick(HTTP, srv.addr())

	r := probeOnce(t, s, Options{})
	wantResult(t, r, true, ReasonOK, "status 200")
	if r.Status != 200 || r.Phases.Connect <= 0 || r.Phases.FirstByte <= 0 || r.Phases.Total < r.Phases.Connect+r.Phases.FirstByte {
		t.Errorf("status %d, phases %+v", r.Status, r.Phases)
	}
	if r.At.IsZero() {
		t.Error("no time")
	}

	for _, code := range []int{204, 301, 399} {
		srv.set(code, "")
		wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, fmt.Sprintf("status %d", code))
	}
	for _, code := range []int{400, 404, 500, 503} {
		srv.set(code, "down")
		r := probeOnce(t, s, Options{})
		wantResult(t, r, false, ReasonStatus, fmt.Sprintf("status %d", code))
		if r.Status != code {
			t.Errorf("Status = %d, want %d", r.Status, code)
		}
	}
}

func TestHTTPRedirectNotFollowed(t *testing.T) {
	dead := closedAddr(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+dead+"/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	r := probeOnce(t, quick(HTTP, srv.Listener.Addr().String()), Options{})
	wantResult(t, r, true, ReasonOK, "status 302")
}

func TestHTTPConnectRefused(t *testing.T) {
	for _, kind := range []Kind{HTTP, HTTPS, TCP} {
		r := probeOnce(t, quick(kind, closedAddr(t)), Options{})
		wantResult(t, r, false, ReasonRefused, "connect: connection refused")
		if r.Phases.Connect != 0 || r.Phases.Total <= 0 {
			t.Errorf("%s: phases %+v", kind, r.Phases)
		}
	}
}

func TestHTTPSilentBackend(t *testing.T) {
	addr := silentAddr(t)
	start := time.Now()
	r := probeOnce(t, quick(HTTP, addr), Options{})
	wantResult(t, r, false, ReasonTimeout, "no response within 150ms")
	if took := time.Since(start); took < 150*time.Millisecond || took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	r = probeOnce(t, quick(HTTPS, addr), Options{})
	wantResult(t, r, false, ReasonTimeout, "no response within 150ms (TLS handshake)")
}

func TestHTTPAnswerAfterTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	r := probeOnce(t, quick(HTTP, srv.Listener.Addr().String()), Options{})
	wantResult(t, r, false, ReasonTimeout, "no response within 150ms")
}

func TestHTTPHeadersThenStall(t *testing.T) {
	addr := replyServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nnothing yet", stall)
	s := quick(HTTP, addr)
	// Without string matching the status line is all that counts.
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200")
	s.Search = "ready"
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonTimeout,
		"no response within 150ms (search string not in the 11 body bytes received)")
}

func TestHTTPSearchLimit(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	s := quick(HTTP, srv.addr())
	s.Search = "Needle"
	cases := []struct {
		body    string
		ok      bool
		reason  Reason
		message string
	}{
		{"all is Needle and well", true, ReasonOK, "status 200, search string found"},
		{"all is needle, lower case", false, ReasonSearch, "search string not found in the body (25 bytes)"},
		{"", false, ReasonSearch, "search string not found in the body (0 bytes)"},
		// The string must end within the first SearchLimit bytes.
		{strings.Repeat("x", SearchLimit-6) + "Needle", true, ReasonOK, "status 200, search string found"},
		{strings.Repeat("x", SearchLimit-5) + "Needle", false, ReasonSearch, "search string not found in the first 5120 bytes"},
		{strings.Repeat("x", 2*SearchLimit) + "Needle", false, ReasonSearch, "search string not found in the first 5120 bytes"},
	}
	for i, tc := range cases {
		srv.set(200, tc.body)
		r := probeOnce(t, s, Options{})
		if r.OK != tc.ok || r.Reason != tc.reason || r.Message != tc.message {
			t.Errorf("case %d: got %v %s %q, want %v %s %q", i, r.OK, r.Reason, r.Message, tc.ok, tc.reason, tc.message)
		}
	}
	// A bad status fails before the body is looked at.
	srv.set(500, "Needle")
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonStatus, "status 500")
}

func TestHTTPSearchChunked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 10 { // no Content-Length: chunked, flushed in pieces
			fmt.Fprint(w, strings.Repeat("y", 300))
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "Needle")
	}))
	defer srv.Close()
	s := quick(HTTP, srv.Listener.Addr().String())
	s.Search = "Needle"
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200, search string found")
}

func TestHTTPSearchGzip(t *testing.T) {
	var asked atomic.Value
	asked.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		// Compressed, the needle is nowhere in the raw bytes; decoded it
		// sits well within the limit.
		fmt.Fprint(zw, strings.Repeat("abc", 1000)+"Needle"+strings.Repeat("z", 50000))
		zw.Close()
	}))
	defer srv.Close()
	s := quick(HTTP, srv.Listener.Addr().String())
	s.ResponseTimeout = 5 * time.Second // compressing 50 kB under the race detector on a loaded machine is slow
	s.Search = "Needle"
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200, search string found")
	if got := asked.Load(); got != "gzip" {
		t.Errorf("Accept-Encoding %q, want gzip", got)
	}
	s.Search = "missing"
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonSearch, "search string not found in the first 5120 bytes")
	// Without string matching no encoding is asked for.
	s.Search = ""
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200")
	if got := asked.Load(); got != "" {
		t.Errorf("Accept-Encoding %q without search", got)
	}
}

func TestHTTPBadGzip(t *testing.T) {
	addr := replyServer(t, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\nnot gzip!!", nil)
	s := quick(HTTP, addr)
	s.Search = "x"
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonProtocol, "protocol: gzip: invalid header")
}

func TestHTTPRequest(t *testing.T) {
	heads := make(chan string, 4)
	addr := rawServer(t, func(conn net.Conn) {
		head, _ := readRequest(conn)
		heads <- head
		conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	})
	s := quick(HTTP, addr)
	s.Path = "/health?deep=1"
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200")
	want := "GET /health?deep=1 HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: healthfailover\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if got := <-heads; got != want {
		t.Errorf("request\n%q, want\n%q", got, want)
	}
	s.Search, s.Host = "x", "app.example.org"
	probeOnce(t, s, Options{})
	_, port, _ := net.SplitHostPort(addr)
	if got := <-heads; !strings.Contains(got, "\r\nHost: app.example.org:"+port+"\r\n") || !strings.Contains(got, "\r\nAccept-Encoding: gzip\r\n") {
		t.Errorf("request %q", got)
	}
}

func TestHostHeader(t *testing.T) {
	cases := []struct {
		kind          Kind
		address, host string
		header, sni   string
	}{
		{HTTP, "192.0.2.1:80", "", "192.0.2.1", "192.0.2.1"},
		{HTTP, "192.0.2.1:8080", "", "192.0.2.1:8080", "192.0.2.1"},
		{HTTPS, "192.0.2.1:443", "", "192.0.2.1", "192.0.2.1"},
		{HTTPS, "192.0.2.1:80", "", "192.0.2.1:80", "192.0.2.1"},
		{HTTP, "[2001:db8::1]:80", "", "[2001:db8::1]", "2001:db8::1"},
		{HTTPS, "[2001:db8::1]:8443", "", "[2001:db8::1]:8443", "2001:db8::1"},
		{HTTPS, "192.0.2.1:443", "www.example.org", "www.example.org", "www.example.org"},
		{HTTPS, "192.0.2.1:8443", "www.example.org", "www.example.org:8443", "www.example.org"},
		{HTTP, "192.0.2.1:8080", "www.example.org:9000", "www.example.org:9000", "www.example.org"},
		{HTTP, "www.example.org:80", "", "www.example.org", "www.example.org"},
		// The authority of grpc and grpcs.
		{GRPCS, "192.0.2.1:443", "api.example.org", "api.example.org", "api.example.org"},
		{GRPC, "192.0.2.1:50051", "api.example.org", "api.example.org:50051", "api.example.org"},
	}
	for _, tc := range cases {
		s := Spec{Kind: tc.kind, Address: tc.address, Host: tc.host}
		host, port, _ := net.SplitHostPort(tc.address)
		if got := hostHeader(s, host, port); got != tc.header {
			t.Errorf("%s %s host %q: Host %q, want %q", tc.kind, tc.address, tc.host, got, tc.header)
		}
		if got := serverName(s, host); got != tc.sni {
			t.Errorf("%s %s host %q: server name %q, want %q", tc.kind, tc.address, tc.host, got, tc.sni)
		}
	}
}

// tlsServer is an httptest TLS server (self-signed, for example.com and
// 127.0.0.1) that remembers the SNI and Host it was sent.
func tlsServer(t *testing.T) (srv *httptest.Server, sni, host *atomic.Value) {
	sni, host = &atomic.Value{}, &atomic.Value{}
	sni.Store("")
	host.Store("")
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		fmt.Fprint(w, "secure Needle")
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		sni.Store(hello.ServerName)
		return nil, nil
	}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, sni, host
}

func TestHTTPS(t *testing.T) {
	srv, sni, host := tlsServer(t)
	addr := srv.Listener.Addr().String()
	s := quick(HTTPS, addr)
	s.Search = "Needle"

	r := probeOnce(t, s, Options{})
	wantResult(t, r, true, ReasonOK, "status 200, search string found")
	if r.Phases.TLSHandshake <= 0 {
		t.Errorf("phases %+v", r.Phases)
	}
	if sni.Load() != "" || host.Load() != addr {
		t.Errorf("to an IP: SNI %q, Host %q; want none and %q", sni.Load(), host.Load(), addr)
	}

	s.Host = "example.com"
	wantResult(t, probeOnce(t, s, Options{}), true, ReasonOK, "status 200, search string found")
	_, port, _ := net.SplitHostPort(addr)
	if sni.Load() != "example.com" || host.Load() != "example.com:"+port {
		t.Errorf("SNI %q, Host %q", sni.Load(), host.Load())
	}

	// Self-signed: verification fails against the system's roots.
	s.TLSVerify = true
	r = probeOnce(t, s, Options{})
	if r.OK || r.Reason != ReasonTLS || !strings.HasPrefix(r.Message, "tls: ") || strings.HasPrefix(r.Message, "tls: tls:") ||
		!strings.Contains(r.Message, "certificate") {
		t.Errorf("verified against system roots: %v %s %q", r.OK, r.Reason, r.Message)
	}

	// Against the right roots, the name decides.
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	wantResult(t, probeOnce(t, s, Options{roots: roots}), true, ReasonOK, "status 200, search string found")
	s.Host = "wrong.example.net"
	r = probeOnce(t, s, Options{roots: roots})
	if r.OK || r.Reason != ReasonTLS || !strings.Contains(r.Message, "wrong.example.net") {
		t.Errorf("wrong name: %v %s %q", r.OK, r.Reason, r.Message)
	}
}

func TestHTTPSToPlainHTTP(t *testing.T) {
	srv := newFlipServer(t, 200, "")
	r := probeOnce(t, quick(HTTPS, srv.addr()), Options{})
	if r.OK || r.Reason != ReasonTLS || !strings.HasPrefix(r.Message, "tls: ") {
		t.Errorf("got %v %s %q", r.OK, r.Reason, r.Message)
	}
}

func TestHTTPIgnoresProxyEnvironment(t *testing.T) {
	proxy := "http://" + closedAddr(t)
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"} {
		t.Setenv(v, proxy)
	}
	t.Setenv("NO_PROXY", "")
	srv := newFlipServer(t, 200, "")
	wantResult(t, probeOnce(t, quick(HTTP, srv.addr()), Options{}), true, ReasonOK, "status 200")
	tlsSrv, _, _ := tlsServer(t)
	wantResult(t, probeOnce(t, quick(HTTPS, tlsSrv.Listener.Addr().String()), Options{}), true, ReasonOK, "status 200")
}

func TestHTTPNotHTTP(t *testing.T) {
	cases := []struct {
		reply   string
		message string
	}{
		{"SSH-2.0-OpenSSH_9.6\r\n", `protocol: malformed HTTP response "SSH-2.0-OpenSSH_9.6"`},
		{"", "protocol: connection closed without a complete response"},
		{"HTTP/1.1 200 OK\r\nContent-Le", `protocol: malformed MIME header: missing colon: "Content-Le"`},
	}
	for _, tc := range cases {
		addr := replyServer(t, tc.reply, nil)
		wantResult(t, probeOnce(t, quick(HTTP, addr), Options{}), false, ReasonProtocol, tc.message)
	}
}

func TestHTTPInterimResponse(t *testing.T) {
	addr := replyServer(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil)
	wantResult(t, probeOnce(t, quick(HTTP, addr), Options{}), true, ReasonOK, "status 200")
}

// endless is a reader that never ends.
type endless struct{ b byte }

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.b
	}
	return len(p), nil
}

// countingConn is a connection made of a reader, counting what is read.
type countingConn struct {
	r    io.Reader
	read int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) { return len(p), nil }

func TestHTTPEndlessBodyReadsLittle(t *testing.T) {
	s := quick(HTTP, "127.0.0.1:80").WithDefaults()
	s.Search = "Needle"
	p, err := newHTTPProbe(s, Options{}, newBuffers())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		head string
		body io.Reader
		max  int64
	}{
		// Identity: the limit, and no more than one buffer of read-ahead.
		{"identity", "HTTP/1.1 200 OK\r\n\r\n", endless{'x'}, SearchLimit + 2*4096},
		// One byte per chunk: six raw bytes per byte looked at.
		{"tiny chunks", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			strings.NewReader(strings.Repeat("1\r\nx\r\n", 20000)), 6*SearchLimit + 2*4096},
		// Chunk extensions, a hundred raw bytes per byte: the raw allowance
		// (or net/http's own guard against such overhead) stops it.
		{"chunk extensions", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			strings.NewReader(strings.Repeat("1;e="+strings.Repeat("e", 100)+"\r\nx\r\n", 20000)), maxHeaderBytes + maxBodyBytes},
	} {
		conn := &countingConn{r: io.MultiReader(strings.NewReader(tc.head), tc.body)}
		var r Result
		p.exchange(conn, &r)
		if r.OK || (r.Reason != ReasonSearch && r.Reason != ReasonProtocol) {
			t.Errorf("%s: %s %.200q", tc.name, r.Reason, r.Message)
		}
		if conn.read > tc.max {
			t.Errorf("%s: read %d bytes, want at most %d", tc.name, conn.read, tc.max)
		}
	}

	// A header that never ends.
	conn := &countingConn{r: io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), endless{'h'})}
	var r Result
	p.exchange(conn, &r)
	wantResult(t, r, false, ReasonProtocol, "protocol: response header larger than 64 KiB")
	if conn.read > maxHeaderBytes {
		t.Errorf("header: read %d bytes", conn.read)
	}
}

func TestHTTPEndlessBodyOverNetwork(t *testing.T) {
	addr := replyServer(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", func(conn net.Conn) {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	})
	s := quick(HTTP, addr)
	s.ResponseTimeout = 5 * time.Second
	s.Search = "Needle"
	start := time.Now()
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonSearch, "search string not found in the first 5120 bytes")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s: the probe should stop reading at the limit", took)
	}
}

func TestHTTPHugeHeaderOverNetwork(t *testing.T) {
	addr := replyServer(t, "HTTP/1.1 200 OK\r\n", func(conn net.Conn) {
		line := []byte("X-Padding: " + strings.Repeat("p", 1000) + "\r\n")
		for {
			if _, err := conn.Write(line); err != nil {
				return
			}
		}
	})
	s := quick(HTTP, addr)
	s.ResponseTimeout = 5 * time.Second
	wantResult(t, probeOnce(t, s, Options{}), false, ReasonProtocol, "protocol: response header larger than 64 KiB")
}
