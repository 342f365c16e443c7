package checker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// How much of a response a probe reads at most, so that a huge header or an
// endless body costs a bounded amount of memory and time. The body allowance
// is raw bytes on the wire: a chunked or gzipped body needs more of them
// than the SearchLimit bytes that string matching looks at.
const (
	maxHeaderBytes = 64 << 10
	maxBodyBytes   = 64 << 10
)

var (
	errHeaderTooLarge = errors.New("response header larger than 64 KiB")
	errBodyTooLarge   = errors.New("body read limit reached")
)

// cappedReader reads at most n more bytes, then fails with err.
type cappedReader struct {
	r   io.Reader
	n   int64
	err error
	// readErr keeps what cut the stream short: bufio hands a partial line to
	// textproto without it, and textproto then calls the line malformed.
	readErr error
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if err != nil {
		c.readErr = err
	}
	return n, err
}

// exchange writes the request and judges the response.
func (p *httpProbe) exchange(rw io.ReadWriter, r *Result) {
	if _, err := rw.Write(p.request); err != nil {
		r.Reason, r.Message = p.readFailure(err)
		return
	}
	sent := time.Now()
	capped := &cappedReader{r: rw, n: maxHeaderBytes, err: errHeaderTooLarge}
	br := p.bufs.getReader(capped)
	defer p.bufs.putReader(br)
	if _, err := br.Peek(1); err != nil {
		r.Reason, r.Message = p.readFailure(err)
		return
	}
	r.Phases.FirstByte = time.Since(sent)
	resp, err := readResponse(br)
	if err != nil {
		// bufio hands a cut-off line to textproto as if whole, which then
		// sees a malformed header: say what really happened.
		switch {
		case capped.n <= 0:
			err = errHeaderTooLarge
		case capped.readErr != nil && capped.readErr != io.EOF:
			err = capped.readErr // a timeout or a reset mid-line
		}
		r.Reason, r.Message = p.readFailure(err)
		return
	}
	r.Status = resp.StatusCode
	status := "status " + strconv.Itoa(resp.StatusCode)
	// Redirects are not followed: a 3xx is an answer, and following it
	// could send the probe anywhere.
	if !p.expects(resp.StatusCode) {
		r.Reason, r.Message = ReasonStatus, status
		return
	}
	if p.search == nil {
		r.OK, r.Reason, r.Message = true, ReasonOK, status
		return
	}
	capped.n, capped.err = maxBodyBytes, errBodyTooLarge
	r.Reason, r.Message = p.match(resp)
	if r.Reason == ReasonOK {
		r.OK, r.Message = true, status+", "+r.Message
	}
}

// readResponse reads the response head, skipping interim 1xx responses.
func readResponse(br *bufio.Reader) (*http.Response, error) {
	for range 5 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, err
		}
	}
	return nil, errors.New("too many interim responses")
}

// readFailure describes an error before or while reading the response head.
func (p *httpProbe) readFailure(err error) (Reason, string) {
	switch {
	case isTimeout(err):
		return ReasonTimeout, p.noResponse()
	case errors.Is(err, errHeaderTooLarge):
		return ReasonProtocol, "protocol: " + errHeaderTooLarge.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonProtocol, "protocol: connection closed without a complete response"
	}
	return ReasonProtocol, "protocol: " + describe(err)
}

// match looks for the search string in the first SearchLimit bytes of the
// body, decoded when gzipped, and stops reading as soon as it is found.
func (p *httpProbe) match(resp *http.Response) (Reason, string) {
	body := io.Reader(resp.Body)
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := p.bufs.getGzip(resp.Body)
		switch {
		case errors.Is(err, io.EOF):
			return ReasonSearch, notFound(0)
		case err != nil:
			return p.bodyFailure(err, 0)
		}
		defer p.bufs.putGzip(zr)
		body = zr
	default:
		return ReasonProtocol, fmt.Sprintf("protocol: unsupported content encoding %q", resp.Header.Get("Content-Encoding"))
	}
	buf := p.bufs.getSearch()
	defer p.bufs.putSearch(buf)
	found, n, err := scan(body, p.search, *buf)
	switch {
	case found:
		return ReasonOK, "search string found"
	case err == nil, errors.Is(err, errBodyTooLarge):
		return ReasonSearch, notFound(n)
	}
	return p.bodyFailure(err, n)
}

func (p *httpProbe) bodyFailure(err error, n int) (Reason, string) {
	if isTimeout(err) {
		return ReasonTimeout, fmt.Sprintf("%s (search string not in the %d body bytes received)", p.noResponse(), n)
	}
	return ReasonProtocol, "protocol: " + describe(err)
}

func notFound(n int) string {
	if n >= SearchLimit {
		return fmt.Sprintf("search string not found in the first %d bytes", SearchLimit)
	}
	return fmt.Sprintf("search string not found in the body (%d bytes)", n)
}

// scan reads r into buf until needle appears, buf is full or r ends (err
// nil); n is how many bytes it read. It never reads more than len(buf).
func scan(r io.Reader, needle, buf []byte) (found bool, n int, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		from := max(0, n-len(needle)+1)
		n += m
		if bytes.Contains(buf[from:n], needle) {
			return true, n, nil
		}
		if err == io.EOF {
			return false, n, nil
		}
		if err != nil {
			return false, n, err
		}
	}
	return false, n, nil
}
