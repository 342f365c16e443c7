package fakebackend

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Handlers for StartTCP and NewTCP: HTTP servers that misbehave in the ways
// a probe must survive. Each ends when the client goes away (a read or a
// write fails) or when the server closes.
var (
	// Silent reads and never writes: for http a response that never
	// comes, for https a TLS handshake that stalls after the ClientHello.
	Silent = func(c net.Conn, _ <-chan struct{}) { io.Copy(io.Discard, c) }

	// Trickle sends a status line one byte a second: the head never
	// completes within a response timeout.
	Trickle = func(c net.Conn, done <-chan struct{}) {
		readRequest(c)
		head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nOK")
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for _, b := range head {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-done:
				return
			}
		}
	}

	// EndlessBody sends a valid head and then a body that never ends and
	// never contains a search string other than "lorem ipsum ".
	EndlessBody = func(c net.Conn, _ <-chan struct{}) {
		readRequest(c)
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("lorem ipsum "), 1024)
		// Bounded: a client that stops reading and resets fails a write
		// within a few iterations; Close ends the connection otherwise.
		for range 1 << 20 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}

	// ResetMidResponse writes half a response head and resets the
	// connection (SO_LINGER 0: an RST, not a FIN).
	ResetMidResponse = func(c net.Conn, _ <-chan struct{}) {
		readRequest(c)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Ty")
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}

	// PlainToTLS answers a ClientHello with plain HTTP: not TLS at all.
	PlainToTLS = func(c net.Conn, _ <-chan struct{}) {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		io.Copy(io.Discard, c)
	}
)

// HugeHeaders returns a handler that sends a status line and 1 MiB of header
// lines (built once).
func HugeHeaders() func(net.Conn, <-chan struct{}) {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("h", 1000))
	}
	b.WriteString("\r\nOK")
	head := b.Bytes()
	return func(c net.Conn, _ <-chan struct{}) {
		readRequest(c)
		c.Write(head)
	}
}

// readRequest reads a request head, so that a handler answers (or fails
// to) after the client has written, as a real server would.
func readRequest(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte("\r\n\r\n")) && len(got) < 64<<10 {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return
		}
	}
	c.SetReadDeadline(time.Time{})
}
