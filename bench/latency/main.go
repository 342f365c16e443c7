// Command latency sends DNS queries over UDP at a fixed rate (open loop: the
// sending does not wait for answers) and reports the latency of each answer
// as percentiles. dnsperf 2.10 reports only the average latency, and the
// tail is what a failover plugin could spoil.
//
//	latency -server 127.0.0.1:1053 -queries FILE -rate 20000 -duration 5s
//	latency -server 127.0.0.1:1053,127.0.0.1:1054 -label a,b -queries FILE -rate 20000 -duration 5s
//
// FILE is in dnsperf's format: "NAME TYPE" per line. With several servers
// the queries take turns, one to each server, at -rate in all: a stall of
// the machine or of the process behind them hits every server alike, so
// their percentiles compare the servers and not the moments they were
// measured in. The result is one line per server of key=value pairs
// (latencies in microseconds), for the scripts to parse:
//
//	label=X rate=20000 sent=100000 answered=99990 lost=10 errors=0 p50_us=… p90_us=… p99_us=… p999_us=… max_us=… behind_max_us=… stalls=0 stalled_ms=0 send_s=5.00
//
// Latency runs from the send to the receipt of each answer. errors counts
// answers that are not NOERROR with at least one record; behind_max_us is
// how far the sender fell behind its schedule at worst, and stalls counts
// the times it was held up by more than 10 ms (the busy machine, not the
// server): it then skips ahead instead of sending a burst.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.0.0.1:53", "DNS servers (loopback addresses), comma-separated")
	queries := flag.String("queries", "", "query file: NAME TYPE per line")
	rate := flag.Int("rate", 1000, "queries per second")
	duration := flag.Duration("duration", 5*time.Second, "how long to send")
	conns := flag.Int("conns", 4, "UDP sockets per server to spread the queries over")
	timeout := flag.Duration("timeout", time.Second, "an answer later than this counts as lost")
	label := flag.String("label", "", "labels printed first on the result lines, comma-separated, one per server")
	flag.Parse()

	if err := run(strings.Split(*server, ","), strings.Split(*label, ","), *queries, *rate, *duration, *conns, *timeout); err != nil {
		log.Fatalf("latency: %v", err)
	}
}

// socket is one UDP socket with its own 16-bit ID space.
type socket struct {
	conn *net.UDPConn
	// sentAt is the send time (UnixNano) of the query with each ID, 0 once
	// answered.
	sentAt    [1 << 16]atomic.Int64
	latencies []time.Duration
	errors    int
}

func run(servers, labels []string, queryFile string, rate int, duration time.Duration, conns int, timeout time.Duration) error {
	if len(labels) != len(servers) {
		return fmt.Errorf("%d labels for %d servers", len(labels), len(servers))
	}
	if rate <= 0 || conns <= 0 || duration <= 0 {
		return errors.New("rate, conns and duration must be positive")
	}
	packets, err := packQueries(queryFile)
	if err != nil {
		return err
	}

	total := int(int64(rate) * int64(duration) / int64(time.Second))
	start0 := time.Now()
	// sockets[k] are server k's.
	sockets := make([][]*socket, len(servers))
	var wg sync.WaitGroup
	for k, server := range servers {
		addr, err := net.ResolveUDPAddr("udp", server)
		if err != nil {
			return err
		}
		if !addr.IP.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address", server)
		}
		for range conns {
			c, err := net.DialUDP("udp", nil, addr)
			if err != nil {
				return err
			}
			c.SetReadBuffer(4 << 20)
			s := &socket{conn: c, latencies: make([]time.Duration, 0, total/conns/len(servers)+1)}
			sockets[k] = append(sockets[k], s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.receive(timeout)
			}()
		}
	}

	// Send on a fixed schedule: query i is due at start + i/rate. The loop
	// sends whatever is due, then sleeps a little; the sleep's granularity
	// makes small bursts, not a lower rate. When the sender itself was held
	// up (the machine is busy) by more than maxBehind, it does not catch up
	// with one burst, which would overflow the server's socket buffer and
	// measure the client: the schedule moves on, and the stall is reported.
	const maxBehind = 10 * time.Millisecond
	start := time.Now()
	var behindMax, stalled time.Duration
	stalls := 0
	buf := make([]byte, 0, 512)
	at := func(i int) time.Duration { return time.Duration(int64(i) * int64(time.Second) / int64(rate)) }
	for i := 0; i < total; {
		now := time.Now()
		if behind := now.Sub(start) - at(i); behind > maxBehind {
			stalls++
			stalled += behind
			start = start.Add(behind)
		} else if behind > behindMax {
			behindMax = behind
		}
		due := min(int(int64(now.Sub(start))*int64(rate)/int64(time.Second))+1, total)
		for ; i < due; i++ {
			// Query i goes to server i mod n; within a server, the
			// queries go round its sockets, each with its own IDs.
			j := i / len(servers)
			s := sockets[i%len(servers)][j%conns]
			id := uint16(j / conns)
			buf = append(buf[:0], packets[j%len(packets)]...)
			buf[0], buf[1] = byte(id>>8), byte(id)
			s.sentAt[id].Store(time.Now().UnixNano())
			s.conn.Write(buf) // a failed send shows as a lost query
		}
		time.Sleep(200 * time.Microsecond)
	}
	elapsed := time.Since(start0)
	// Answers still on their way get the timeout, then the readers stop.
	time.Sleep(timeout)
	for _, ss := range sockets {
		for _, s := range ss {
			s.conn.Close()
		}
	}
	wg.Wait()

	for k, ss := range sockets {
		var all []time.Duration
		errs := 0
		for _, s := range ss {
			all = append(all, s.latencies...)
			errs += s.errors
		}
		slices.Sort(all)
		pct := func(q float64) int64 {
			if len(all) == 0 {
				return -1
			}
			return all[int(q*float64(len(all)-1))].Microseconds()
		}
		// Server k got queries k, k+n, k+2n, … of the total.
		sent := (total - k + len(servers) - 1) / len(servers)
		fmt.Printf("label=%s rate=%d sent=%d answered=%d lost=%d errors=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d behind_max_us=%d stalls=%d stalled_ms=%d send_s=%.2f\n",
			labels[k], rate/len(servers), sent, len(all), sent-len(all), errs, pct(0.5), pct(0.9), pct(0.99), pct(0.999), pct(1),
			behindMax.Microseconds(), stalls, stalled.Milliseconds(), elapsed.Seconds())
	}
	return nil
}

// receive reads answers until the socket is closed, matching each to its
// query by ID.
func (s *socket) receive(timeout time.Duration) {
	buf := make([]byte, 4096)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable: the query counts as lost
		}
		now := time.Now().UnixNano()
		if n < 12 {
			continue
		}
		id := uint16(buf[0])<<8 | uint16(buf[1])
		sent := s.sentAt[id].Swap(0)
		if sent == 0 {
			continue // a duplicate, or an ID already reused
		}
		lat := time.Duration(now - sent)
		if lat > timeout {
			continue
		}
		s.latencies = append(s.latencies, lat)
		rcode := buf[3] & 0x0f
		answers := uint16(buf[6])<<8 | uint16(buf[7])
		additional := uint16(buf[10])<<8 | uint16(buf[11])
		// whoami answers in the additional section.
		if rcode != dns.RcodeSuccess || answers+additional == 0 {
			s.errors++
		}
	}
}

// packQueries reads a dnsperf query file and packs each query once.
func packQueries(file string) ([][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var packets [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		qtype := dns.TypeA
		if len(fields) > 1 {
			t, ok := dns.StringToType[strings.ToUpper(fields[1])]
			if !ok {
				return nil, fmt.Errorf("%s: unknown type %q", file, fields[1])
			}
			qtype = t
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(fields[0]), qtype)
		p, err := m.Pack()
		if err != nil {
			return nil, err
		}
		packets = append(packets, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(packets) == 0 {
		return nil, fmt.Errorf("%s: no queries", file)
	}
	return packets, nil
}
