// Package replicas lays out the replicas of a healthfailover cluster side by
// side on one machine and reads what they serve: the cluster's end-to-end
// tests and bench/clusterbench run them as CoreDNS processes.
//
// A replica shares its checks only with replicas whose server blocks have
// the same keys (zones and port), so every replica serves the same DNS port
// on an address of its own (the bind plugin), and its ready, metrics,
// status and gossip listeners on that address too.
package replicas

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/healthfailover/healthfailover/internal/loopback"
)

// Ports are the ports every replica of a cluster uses, each on its own
// address.
type Ports struct {
	DNS, Ready, Metrics, Status, Gossip int
}

// FreePorts finds Ports free on every one of ips: DNS and gossip for UDP
// and TCP, the HTTP ones for TCP. It tries ports from a random place below
// the kernel's ephemeral range, so that two runs at once seldom try the
// same ones.
func FreePorts(ips ...string) (Ports, error) {
	var taken []int
	pick := func(udp bool) (int, error) {
		start := 20000 + rand.IntN(10000)
		for port := start; port < start+2000; port++ {
			if !slices.Contains(taken, port) && loopback.Free(port, udp, ips...) {
				taken = append(taken, port)
				return port, nil
			}
		}
		return 0, fmt.Errorf("no port free on all of %v from %d on", ips, start)
	}
	var p Ports
	var err error
	for _, f := range []struct {
		port *int
		udp  bool
	}{{&p.DNS, true}, {&p.Ready, false}, {&p.Metrics, false}, {&p.Status, false}, {&p.Gossip, true}} {
		if *f.port, err = pick(f.udp); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Replica is where one replica listens and how to reach it.
type Replica struct {
	IP    string // its gossip address, and where it serves unless Serve is set
	Serve string // where it serves DNS, /ready, /metrics and /status if not at IP: 127.0.0.1 in a network namespace of its own
	Ports Ports
	HTTP  *http.Client // reaches its HTTP listeners; nil: hostClient
}

// hostClient reaches a replica on this host's addresses.
var hostClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// ServeIP is where the replica answers DNS, /ready, /metrics and /status.
func (r *Replica) ServeIP() string {
	if r.Serve != "" {
		return r.Serve
	}
	return r.IP
}

func (r *Replica) addr(port int) string { return net.JoinHostPort(r.ServeIP(), strconv.Itoa(port)) }

// DNSAddr is where the replica answers DNS.
func (r *Replica) DNSAddr() string { return r.addr(r.Ports.DNS) }

// ReadyAddr is the replica's ready plugin.
func (r *Replica) ReadyAddr() string { return r.addr(r.Ports.Ready) }

// GossipAddr is where the replica's cluster member gossips.
func (r *Replica) GossipAddr() string { return net.JoinHostPort(r.IP, strconv.Itoa(r.Ports.Gossip)) }

// Block is a server block of a replica, beside its listeners.
type Block struct {
	Zone    string
	Status  bool     // the plugin's status listener, on Ports.Status
	Cluster bool     // a cluster block, gossiping on GossipAddr
	Join    []string // the cluster block's join peers
	Options []string // more lines of the cluster block
	Body    string   // the plugin's checks and records
}

// ServerBlock is b for the replica: Zone on the shared DNS port, with
// ready, prometheus and, if asked, the plugin's status on the replica's
// address.
func (r *Replica) ServerBlock(b Block) string {
	ip := r.ServeIP()
	var s strings.Builder
	fmt.Fprintf(&s, `%s:%d {
    bind %s
    ready %s:%d
    prometheus %s:%d
    healthfailover %s {
`, b.Zone, r.Ports.DNS, ip, ip, r.Ports.Ready, ip, r.Ports.Metrics, b.Zone)
	if b.Status {
		fmt.Fprintf(&s, "        status %s:%d\n", ip, r.Ports.Status)
	}
	if b.Cluster {
		fmt.Fprintf(&s, "        cluster {\n            bind %s\n", r.GossipAddr())
		if len(b.Join) > 0 {
			fmt.Fprintf(&s, "            join %s\n", strings.Join(b.Join, " "))
		}
		for _, o := range b.Options {
			fmt.Fprintf(&s, "            %s\n", o)
		}
		s.WriteString("        }\n")
	}
	s.WriteString(b.Body)
	s.WriteString("\n    }\n}\n")
	return s.String()
}

func (r *Replica) client() *http.Client {
	if r.HTTP != nil {
		return r.HTTP
	}
	return hostClient
}

func (r *Replica) get(path string, port int) (*http.Response, error) {
	return r.client().Get("http://" + r.addr(port) + path)
}

// Get fetches path from the replica's HTTP listener at port: the status
// code and the body.
func (r *Replica) Get(path string, port int) (int, string, error) {
	resp, err := r.get(path, port)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(body), err
}

// Metric is the sum of the samples of the metric name on the replica's
// /metrics whose labels contain every one of match (such as
// `reason="malformed"`).
func (r *Replica) Metric(name string, match ...string) (float64, error) {
	resp, err := r.get("/metrics", r.Ports.Metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	return MetricSum(resp.Body, name, match...)
}

// MetricSum adds up the samples of the metric name in the exposition text
// whose labels contain every one of match.
func MetricSum(text io.Reader, name string, match ...string) (float64, error) {
	var sum float64
	sc := bufio.NewScanner(text)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		labels := line[:i]
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(labels, m)
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil && ok {
			sum += v
		}
	}
	return sum, sc.Err()
}
