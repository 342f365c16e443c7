package cluster

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport is memberlist's own UDP and TCP transport, counting the
// bytes that go through it, so that the cost of gossip is a metric and
// not a guess.
type countingTransport struct {
	memberlist.Transport
	sent, received *atomic.Uint64

	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	stop    sync.Once
	wg      sync.WaitGroup
}

func newCountingTransport(t memberlist.Transport, sent, received *atomic.Uint64) *countingTransport {
	c := &countingTransport{Transport: t, sent: sent, received: received,
		packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), done: make(chan struct{})}
	c.wg.Add(2)
	go c.forwardPackets()
	go c.forwardStreams()
	return c
}

func (c *countingTransport) forwardPackets() {
	defer c.wg.Done()
	in := c.Transport.PacketCh()
	for {
		select {
		case p := <-in:
			c.received.Add(uint64(len(p.Buf)))
			select {
			case c.packets <- p:
			case <-c.done:
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *countingTransport) forwardStreams() {
	defer c.wg.Done()
	in := c.Transport.StreamCh()
	for {
		select {
		case conn := <-in:
			select {
			case c.streams <- &countingConn{Conn: conn, sent: c.sent, received: c.received}:
			case <-c.done:
				conn.Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	c.sent.Add(uint64(len(b)))
	return c.Transport.WriteTo(b, addr)
}

func (c *countingTransport) PacketCh() <-chan *memberlist.Packet { return c.packets }

func (c *countingTransport) StreamCh() <-chan net.Conn { return c.streams }

func (c *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := c.Transport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, sent: c.sent, received: c.received}, nil
}

func (c *countingTransport) Shutdown() error {
	err := c.Transport.Shutdown()
	c.stop.Do(func() { close(c.done) })
	c.wg.Wait()
	return err
}

type countingConn struct {
	net.Conn
	sent, received *atomic.Uint64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.received.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(uint64(n))
	return n, err
}
