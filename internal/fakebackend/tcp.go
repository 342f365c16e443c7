package fakebackend

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// TCP is a loopback listener that hands every connection to a handler, which
// may misbehave as it likes. Close closes the listener and every connection,
// which ends every handler that reads or writes, and waits for them.
type TCP struct {
	ln       net.Listener
	done     chan struct{} // closed by Close: handlers that wait return
	accepted chan struct{} // closed at the first connection
	once     sync.Once

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// StartTCP listens on ip (default 127.0.0.1) and runs handle for every
// connection; done is closed when the server closes.
func StartTCP(ip string, handle func(c net.Conn, done <-chan struct{})) (*TCP, error) {
	if ip == "" {
		ip = "127.0.0.1"
	}
	if err := loopbackOnly(ip); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, err
	}
	s := &TCP{ln: ln, done: make(chan struct{}), accepted: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			select {
			case <-s.done: // accepted just before Close: it would never be closed
				s.mu.Unlock()
				c.Close()
				return
			default:
			}
			s.conns = append(s.conns, c)
			s.wg.Add(1)
			s.mu.Unlock()
			s.once.Do(func() { close(s.accepted) })
			go func() {
				defer s.wg.Done()
				handle(c, s.done)
			}()
		}
	}()
	return s, nil
}

// StartBlackHole starts a server that accepts connections, reads what comes
// and never answers: a peer that hangs after the connect.
func StartBlackHole(ip string) (*TCP, error) {
	return StartTCP(ip, Silent)
}

// Addr is the server's IP:PORT.
func (s *TCP) Addr() string { return s.ln.Addr().String() }

// Accepted is closed once the server has accepted its first connection.
func (s *TCP) Accepted() <-chan struct{} { return s.accepted }

// Close ends the server and every connection, and waits for the handlers.
func (s *TCP) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
	}
	close(s.done)
	s.ln.Close()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// ClosedPort returns an address on ip (default 127.0.0.1) that was free a
// moment ago and where nothing listens now: connections to it are refused.
func ClosedPort(ip string) (string, error) {
	if ip == "" {
		ip = "127.0.0.1"
	}
	if err := loopbackOnly(ip); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// NeverAccepting is a listener on 127.0.0.1 that never accepts and whose
// accept queue is full, so that the kernel drops further SYNs: a connect to
// it times out, as to a host that is down. Linux completes handshakes into
// the backlog even if nobody accepts, so a listener that merely never
// accepted would look like one that accepts and never writes; with
// listen(2)'s backlog 0 the queue holds one connection, and it is filled
// with dummies (dialling until one times out) before it is handed out.
type NeverAccepting struct {
	ln      net.Listener
	dummies []net.Conn
}

// StartNeverAccepting makes a NeverAccepting listener.
func StartNeverAccepting() (*NeverAccepting, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "never-accepting listener")
	ln, err := net.FileListener(f)
	f.Close() // FileListener holds a duplicate
	if err != nil {
		return nil, err
	}
	n := &NeverAccepting{ln: ln}
	for range 16 {
		c, err := net.DialTimeout("tcp", n.Addr(), 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return n, nil // the queue is full: SYNs are dropped from now on
			}
			n.Close()
			return nil, fmt.Errorf("fakebackend: filling the accept queue of %s: %w", n.Addr(), err)
		}
		n.dummies = append(n.dummies, c)
	}
	n.Close()
	return nil, fmt.Errorf("fakebackend: the accept queue of 127.0.0.1 never filled after %d connections", len(n.dummies))
}

// Addr is the listener's IP:PORT.
func (n *NeverAccepting) Addr() string { return n.ln.Addr().String() }

// Close closes the dummy connections and the listener.
func (n *NeverAccepting) Close() {
	for _, c := range n.dummies {
		c.Close()
	}
	n.ln.Close()
}
