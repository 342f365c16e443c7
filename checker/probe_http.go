package checker

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// httpProbe sends one GET (or HEAD) on a fresh connection and judges the status line
// and, with a search string, the start of the body. It is written on the
// connection by hand rather than with net/http's client, whose defaults
// are wrong for a probe (proxies from the environment, redirects followed,
// connections reused, bodies read whole), and so that every phase is timed
// exactly and a probe costs one small request and a few buffers.
type httpProbe struct {
	dialer          *net.Dialer
	address         string
	request         []byte
	tls             *tls.Config // nil for plain http
	responseTimeout time.Duration
	search          []byte // nil without string matching
	expect          []StatusRange
	bufs            *buffers
}

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads
// and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

func newHTTPProbe(s Spec, opts Options, bufs *buffers) (*httpProbe, error) {
	host, port, err := net.SplitHostPort(s.Address)
	if err != nil {
		return nil, err
	}
	p := &httpProbe{
		dialer:          newDialer(s),
		address:         s.Address,
		request:         buildRequest(s, hostHeader(s, host, port)),
		responseTimeout: s.ResponseTimeout,
		expect:          s.Expect,
		bufs:            bufs,
	}
	if s.Search != "" {
		p.search = []byte(s.Search)
	}
	if s.Kind == HTTPS {
		// crypto/tls sends no SNI when ServerName is an IP address, and
		// verifies such a name against the certificate's IP addresses.
		p.tls = &tls.Config{
			ServerName:         serverName(s, host),
			InsecureSkipVerify: !s.TLSVerify, // as Route 53: verify only when asked
			RootCAs:            opts.roots,
		}
	}
	return p, nil
}

// buildRequest writes the request once per check; every probe sends the
// same bytes. The body is asked for gzip only when it will be read. The
// operator's headers replace the probe's User-Agent, Accept and
// Accept-Encoding.
func buildRequest(s Spec, host string) []byte {
	var b strings.Builder
	b.WriteString(s.Method + " " + s.Path + " HTTP/1.1\r\n")
	b.WriteString("Host: " + host + "\r\n")
	given := func(name string) bool {
		return slices.ContainsFunc(s.Headers, func(h Header) bool { return strings.EqualFold(h.Name, name) })
	}
	if !given("User-Agent") {
		b.WriteString("User-Agent: healthfailover\r\n")
	}
	if !given("Accept") {
		b.WriteString("Accept: */*\r\n")
	}
	if s.Search != "" && !given("Accept-Encoding") {
		b.WriteString("Accept-Encoding: gzip\r\n")
	}
	for _, h := range s.Headers {
		b.WriteString(h.Name + ": " + h.Value + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return []byte(b.String())
}

// expects reports whether status is one the check takes for healthy.
func (p *httpProbe) expects(status int) bool {
	for _, r := range p.expect {
		if status >= r.Low && status <= r.High {
			return true
		}
	}
	return false
}

// hostHeader is Spec.Host, or the host of the address, with the port
// appended when it is not the scheme's default, as Route 53 does; for
// grpc and grpcs, the authority.
func hostHeader(s Spec, host, port string) string {
	h := s.Host
	if h == "" {
		h = host
	} else if _, _, err := net.SplitHostPort(h); err == nil {
		return h // the operator gave a port
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	defaultPort := "80"
	if s.Kind == HTTPS || s.Kind == GRPCS {
		defaultPort = "443"
	}
	if port != defaultPort {
		return net.JoinHostPort(h, port)
	}
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// serverName is the TLS server name: the host of Spec.Host, or of the address.
func serverName(s Spec, host string) string {
	if s.Host == "" {
		return host
	}
	if h, _, err := net.SplitHostPort(s.Host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(s.Host, "["), "]")
}

func (p *httpProbe) probe(ctx context.Context) (r Result) {
	start := time.Now()
	defer func() {
		r.At = time.Now()
		r.Phases.Total = r.At.Sub(start)
	}()

	tcp, connected := connect(ctx, p.dialer, p.address, start, &r)
	if tcp == nil {
		return r
	}
	defer closeProbeConn(tcp)

	// Everything after the connection, the TLS handshake and the body
	// included, shares the response timeout. Stop expires the deadline at
	// once, so that it never waits for a silent backend.
	_ = tcp.SetDeadline(connected.Add(p.responseTimeout))
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = tcp.SetDeadline(aLongTimeAgo)
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted // Stop waits for every goroutine, this one too
		}
	}()

	var rw io.ReadWriter = tcp
	if p.tls != nil {
		tc := tls.Client(tcp, p.tls)
		if err := tc.Handshake(); err != nil {
			r.Reason, r.Message = p.tlsFailure(err)
			return r
		}
		r.Phases.TLSHandshake = time.Since(connected)
		// The connection is closed under tc, without close_notify: the
		// exchange is over and a reset follows anyway.
		rw = tc
	}
	p.exchange(rw, &r)
	return r
}

func (p *httpProbe) tlsFailure(err error) (Reason, string) {
	return tlsFailure(err, p.responseTimeout)
}

func (p *httpProbe) noResponse() string { return noResponse(p.responseTimeout) }

// tlsFailure turns a failed TLS handshake into a reason and a message.
func tlsFailure(err error, responseTimeout time.Duration) (Reason, string) {
	switch {
	case isTimeout(err):
		return ReasonTimeout, noResponse(responseTimeout) + " (TLS handshake)"
	case errors.Is(err, io.EOF):
		return ReasonTLS, "tls: connection closed during the handshake"
	}
	return ReasonTLS, "tls: " + strings.TrimPrefix(describe(err), "tls: ")
}

func noResponse(timeout time.Duration) string { return "no response within " + timeout.String() }
