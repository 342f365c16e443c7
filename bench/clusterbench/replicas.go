package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/miekg/dns"
)

// ports are the ports every replica uses, each on its own loopback
// address: replicas share a check only when their server blocks have the
// same keys, the DNS port included.
type ports struct{ dns, ready, metrics, gossip int }

// freePorts finds ports free on every one of ips (DNS and gossip for UDP
// and TCP), from a random place below the ephemeral range.
func freePorts(ips []string) (ports, error) {
	var taken []int
	pick := func(udp bool) (int, error) {
		start := 20000 + rand.IntN(10000)
		for port := start; port < start+2000; port++ {
			if !slices.Contains(taken, port) && portFree(port, udp, ips) {
				taken = append(taken, port)
				return port, nil
			}
		}
		return 0, fmt.Errorf("no port free on all of %v", ips)
	}
	var p ports
	var err error
	for _, f := range []struct {
		port *int
		udp  bool
	}{{&p.dns, true}, {&p.ready, false}, {&p.metrics, false}, {&p.gossip, true}} {
		if *f.port, err = pick(f.udp); err != nil {
			return p, err
		}
	}
	return p, nil
}

func portFree(port int, udp bool, ips []string) bool {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		held = append(held, l)
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			held = append(held, u)
		}
	}
	return true
}

// replica is one CoreDNS of the cluster (or, without `cluster`, one of
// several independent servers with the same configuration).
type replica struct {
	name  string
	ip    string
	ports ports
	dir   string
	proc  *corednsproc.Process
}

// group is the replicas of one measurement, on prefix.1 … prefix.n.
type group struct {
	bin      string
	zone     string
	replicas []*replica
}

// newGroup lays out n replicas; body is the plugin's checks and records;
// cluster the options of the cluster block, or "-" for no cluster.
func newGroup(bin, work, prefix string, n int) (*group, error) {
	var ips []string
	for i := 1; i <= n; i++ {
		ips = append(ips, fmt.Sprintf("%s.%d", prefix, i))
	}
	p, err := freePorts(ips)
	if err != nil {
		return nil, err
	}
	g := &group{bin: bin, zone: "bench.test"}
	for i, ip := range ips {
		dir := filepath.Join(work, fmt.Sprintf("%s-r%d", strings.ReplaceAll(prefix, ".", "-"), i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		g.replicas = append(g.replicas, &replica{name: fmt.Sprintf("r%d", i+1), ip: ip, ports: p, dir: dir})
	}
	return g, nil
}

func (r *replica) dnsAddr() string    { return net.JoinHostPort(r.ip, strconv.Itoa(r.ports.dns)) }
func (r *replica) gossipAddr() string { return net.JoinHostPort(r.ip, strconv.Itoa(r.ports.gossip)) }

// corefile is the replica's server block; clusterOpts nil means no
// cluster block at all.
func (g *group) corefile(r *replica, clusterOpts []string, body string) string {
	var join []string
	for _, o := range g.replicas {
		join = append(join, o.gossipAddr())
	}
	cluster := ""
	if clusterOpts != nil {
		cluster = fmt.Sprintf("        cluster {\n            bind %s\n            join %s\n", r.gossipAddr(), strings.Join(join, " "))
		for _, o := range clusterOpts {
			cluster += "            " + o + "\n"
		}
		cluster += "        }\n"
	}
	return fmt.Sprintf(`%s:%d {
    bind %s
    ready %s:%d
    prometheus %s:%d
    healthfailover %s {
%s%s
    }
}
`, g.zone, r.ports.dns, r.ip, r.ip, r.ports.ready, r.ip, r.ports.metrics, g.zone, cluster, body)
}

// start runs replica r and waits for its /ready.
func (g *group) start(r *replica, clusterOpts []string, body string) error {
	p, err := corednsproc.Start(g.bin, r.dir, g.corefile(r, clusterOpts, body))
	if err != nil {
		return err
	}
	r.proc = p
	if err := p.WaitReady(net.JoinHostPort(r.ip, strconv.Itoa(r.ports.ready)), 2*time.Minute); err != nil {
		return fmt.Errorf("%s: %v", r.name, err)
	}
	return nil
}

// stopAll stops every running replica.
func (g *group) stopAll() {
	for _, r := range g.replicas {
		if r.proc != nil {
			r.proc.Stop(syscall.SIGTERM, 10*time.Second)
		}
	}
}

// errorLines are the replicas' log lines that report an error or a panic.
func (g *group) errorLines() []string {
	var bad []string
	for _, r := range g.replicas {
		if r.proc == nil {
			continue
		}
		for _, l := range strings.Split(r.proc.Output(), "\n") {
			if strings.Contains(l, "[ERROR]") || strings.Contains(l, "panic") {
				bad = append(bad, r.name+": "+l)
			}
		}
	}
	return bad
}

var httpClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// metric is the sum of the samples of name whose labels contain every one
// of match, from the replica's /metrics.
func (r *replica) metric(name string, match ...string) (float64, error) {
	resp, err := httpClient.Get("http://" + net.JoinHostPort(r.ip, strconv.Itoa(r.ports.metrics)) + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(line[:i], m)
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil && ok {
			sum += v
		}
	}
	return sum, sc.Err()
}

// cpuTicks is the replica's user+system CPU time, in clock ticks.
func (r *replica) cpuTicks() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.proc.Pid()))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", r.proc.Pid(), data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", r.proc.Pid(), data)
	}
	return utime + stime, nil
}

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat's times;
// 100 on every Linux architecture Go runs on but alpha and ia64.
const clockTick = 100

// asker queries one replica over one UDP socket.
type asker struct {
	client *dns.Client
	conn   *dns.Conn
}

func newAsker(r *replica) (*asker, error) {
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	conn, err := c.Dial(r.dnsAddr())
	if err != nil {
		return nil, err
	}
	return &asker{client: c, conn: conn}, nil
}

func (a *asker) close() { a.conn.Close() }

// answer is name's A records joined by commas, or what went wrong.
func (a *asker) answer(name string) string {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := a.client.ExchangeWithConn(m, a.conn)
	if err != nil {
		return "error: " + err.Error()
	}
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	var addrs []string
	for _, rr := range r.Answer {
		if x, ok := rr.(*dns.A); ok {
			addrs = append(addrs, x.A.String())
		}
	}
	slices.Sort(addrs)
	return strings.Join(addrs, ",")
}

// waitMembers waits until every running replica counts n members.
func (g *group) waitMembers(rs []*replica, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ok := true
		var got []string
		for _, r := range rs {
			m, err := r.metric("coredns_healthfailover_cluster_members")
			ok = ok && err == nil && m == float64(n)
			got = append(got, fmt.Sprintf("%s=%v", r.name, m))
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not %d members on every replica within %s: %s", n, within, strings.Join(got, " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
