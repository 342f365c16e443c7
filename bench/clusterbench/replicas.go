package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/healthfailover/healthfailover/internal/replicas"
	"github.com/miekg/dns"
)

// replica is one CoreDNS of the cluster (or, without `cluster`, one of
// several independent servers with the same configuration).
type replica struct {
	replicas.Replica
	name string
	dir  string
	proc *corednsproc.Process
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
	p, err := replicas.FreePorts(ips...)
	if err != nil {
		return nil, err
	}
	g := &group{bin: bin, zone: "bench.test"}
	for i, ip := range ips {
		dir := filepath.Join(work, fmt.Sprintf("%s-r%d", strings.ReplaceAll(prefix, ".", "-"), i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		g.replicas = append(g.replicas, &replica{Replica: replicas.Replica{IP: ip, Ports: p}, name: fmt.Sprintf("r%d", i+1), dir: dir})
	}
	return g, nil
}

// corefile is the replica's server block; clusterOpts nil means no
// cluster block at all.
func (g *group) corefile(r *replica, clusterOpts []string, body string) string {
	var join []string
	for _, o := range g.replicas {
		join = append(join, o.GossipAddr())
	}
	return r.ServerBlock(replicas.Block{Zone: g.zone, Cluster: clusterOpts != nil, Join: join, Options: clusterOpts, Body: body})
}

// start runs replica r and waits for its /ready.
func (g *group) start(r *replica, clusterOpts []string, body string) error {
	p, err := corednsproc.Start(g.bin, r.dir, g.corefile(r, clusterOpts, body))
	if err != nil {
		return err
	}
	r.proc = p
	if err := p.WaitReady(r.ReadyAddr(), 2*time.Minute); err != nil {
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
	conn, err := c.Dial(r.DNSAddr())
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
			m, err := r.Metric("coredns_healthfailover_cluster_members")
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
