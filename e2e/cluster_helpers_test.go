package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/healthfailover/healthfailover/internal/nginxproc"
	"github.com/healthfailover/healthfailover/internal/replicas"
	"github.com/miekg/dns"
)

// The cluster tests run replicas of one CoreDNS configuration side by side,
// laid out by internal/replicas: every replica serves the same DNS port on
// an address of its own, and its ready, metrics, status and gossip
// listeners on that address too.

// Timings of the cluster tests: short, so that a failover takes about a
// second and the tests a few seconds each.
const (
	clusterInterval  = 500 * time.Millisecond
	clusterThreshold = 2
)

// replica is one CoreDNS of a cluster. On the host it listens on its own
// loopback address; in a network namespace (ns) it serves DNS, ready,
// metrics and status on the namespace's 127.0.0.1 and gossips on IP.
type replica struct {
	replicas.Replica        // where it listens, and its /metrics and /status
	name             string // the test's name for it: r1, r2, …
	ns               string
	corefile         string
	bin              []string // the command that runs CoreDNS; default corednsBin

	proc   *corednsproc.Process
	member string // its memberlist name in this life, from its log
	lives  int
}

// serverBlock is one server block of a replica: zone on the shared DNS
// port, with ready, prometheus and the plugin's status on the replica's
// address, and a cluster block gossiping on it and joining join. opts is
// one more line of the cluster block, body the checks and records.
func (r *replica) serverBlock(zone string, join []string, opts, body string) string {
	var more []string
	if opts != "" {
		more = []string{opts}
	}
	return r.ServerBlock(replicas.Block{Zone: zone, Status: true, Cluster: true, Join: join, Options: more, Body: body})
}

// newReplicas makes n replicas on the host at prefix.1 … prefix.n, all
// joining all, with one server block for zone. Nothing starts.
func newReplicas(t *testing.T, prefix string, n int, zone, opts, body string) []*replica {
	t.Helper()
	var ips []string
	for i := 1; i <= n; i++ {
		ips = append(ips, fmt.Sprintf("%s.%d", prefix, i))
	}
	ports, err := replicas.FreePorts(ips...)
	if err != nil {
		t.Fatal(err)
	}
	var rs []*replica
	var join []string
	for i, ip := range ips {
		rs = append(rs, &replica{Replica: replicas.Replica{IP: ip, Ports: ports, HTTP: httpClientIn("")}, name: fmt.Sprintf("r%d", i+1)})
		join = append(join, rs[i].GossipAddr())
	}
	for _, r := range rs {
		r.corefile = r.serverBlock(zone, join, opts, body)
	}
	return rs
}

var memberLine = regexp.MustCompile(`cluster \S+: member (\S+), reachable at`)

// start runs the replica and returns once it has logged its member name;
// it does not wait for /ready. The process is stopped when the test ends,
// and its log shown if the test failed.
func (r *replica) start(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(r.corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{corednsBin}
	if len(r.bin) > 0 {
		argv = r.bin
	}
	p, err := corednsproc.Run(argv[0], append(argv[1:], "-conf", conf)...)
	if err != nil {
		t.Fatalf("start %s: %v", r.name, err)
	}
	r.proc = p
	r.lives++
	life := r.lives
	t.Cleanup(func() {
		if !p.Stop(syscall.SIGTERM, 10*time.Second) {
			t.Errorf("%s still running 10s after SIGTERM; killed it", r.name)
		}
		if t.Failed() {
			t.Logf("%s (%s, life %d) Corefile:\n%s\noutput:\n%s", r.name, r.IP, life, r.corefile, p.Output())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := memberLine.FindStringSubmatch(p.Output()); m != nil {
			r.member = m[1]
			return
		}
		if p.Exited() {
			t.Fatalf("%s exited at start (%v):\n%s", r.name, p.State(), p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s logged no member name within 15s:\n%s", r.name, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReady polls /ready until it says 200.
func (r *replica) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body, err := r.Get("/ready", r.Ports.Ready)
		if err == nil && code == http.StatusOK {
			return
		}
		if r.proc.Exited() {
			t.Fatalf("%s exited (%v):\n%s", r.name, r.proc.State(), r.proc.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s: last /ready %d %q %v", r.name, within, code, body, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// startAll starts the replicas one after the other, each ready before the
// next, so that every one after the first finds a peer to join.
func startAll(t *testing.T, rs []*replica) {
	t.Helper()
	for _, r := range rs {
		r.start(t)
		r.waitReady(t, 20*time.Second)
	}
}

// kill ends the replica with SIGKILL: no leave message, its peers notice
// by failure detection.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	if err := r.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s: %v", r.name, err)
	}
	select {
	case <-r.proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGKILL", r.name)
	}
}

// httpClientIn reaches a replica in the network namespace ns ("" for the
// host's).
func httpClientIn(ns string) *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ns, network, addr, 2*time.Second)
		},
	}}
}

// query asks the replica for name's A records over UDP.
func (r *replica) query(name string) (reply, error) {
	conn, err := dialIn(r.ns, "udp", r.DNSAddr(), 2*time.Second)
	if err != nil {
		return reply{}, err
	}
	co := &dns.Conn{Conn: conn}
	defer co.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Timeout: 2 * time.Second}
	resp, _, err := c.ExchangeWithConn(m, co)
	if err != nil {
		return reply{}, err
	}
	out := reply{rcode: dns.RcodeToString[resp.Rcode], aa: resp.Authoritative, addrs: []string{}}
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			out.addrs = append(out.addrs, a.A.String())
		}
	}
	slices.Sort(out.addrs)
	return out, nil
}

// answer is the replica's answer for name as one string: the sorted
// addresses ("10.0.0.1"), or what went wrong.
func (r *replica) answer(name string) string {
	resp, err := r.query(name)
	if err != nil {
		return "error: " + err.Error()
	}
	if resp.rcode != "NOERROR" {
		return resp.rcode
	}
	return strings.Join(resp.addrs, ",")
}

// metric reads one sum from the replica's /metrics; -1 when it cannot.
func (r *replica) metric(name string, match ...string) float64 {
	v, err := r.Metric(name, match...)
	if err != nil {
		return -1
	}
	return v
}

// waitFor polls cond every 50 ms until it holds, and fails the test after
// within with the last thing cond said.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		last = detail
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s; last: %s", what, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMembers waits until every replica counts n alive members.
func waitMembers(t *testing.T, rs []*replica, n int, within time.Duration) {
	t.Helper()
	waitFor(t, within, fmt.Sprintf("%d members on every replica", n), func() (bool, string) {
		var got []string
		ok := true
		for _, r := range rs {
			m := r.metric("coredns_healthfailover_cluster_members")
			got = append(got, fmt.Sprintf("%s=%v", r.name, m))
			ok = ok && m == float64(n)
		}
		return ok, strings.Join(got, " ")
	})
}

// waitAnswers waits until every replica answers name with want.
func waitAnswers(t *testing.T, rs []*replica, name, want string, within time.Duration) {
	t.Helper()
	waitFor(t, within, fmt.Sprintf("every replica answers %s with %s", name, want), func() (bool, string) {
		return allAnswer(rs, name, want)
	})
}

// allAnswer asks every replica once: true when each answered want.
func allAnswer(rs []*replica, name, want string) (bool, string) {
	ok := true
	var got []string
	for _, r := range rs {
		a := r.answer(name)
		ok = ok && a == want
		got = append(got, r.name+"="+a)
	}
	return ok, strings.Join(got, " ")
}

// pollAnswers asks every replica of rs for name, over and over, until the
// stop it returns is called; stop returns how many answers were asked and
// the first ten that were not want.
func pollAnswers(rs []*replica, name, want string) (stop func() (polls int, changed []string)) {
	var (
		polls   int
		changed []string
	)
	done, polled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, r := range rs {
				a := r.answer(name)
				polls++
				if a != want && len(changed) < 10 {
					changed = append(changed, fmt.Sprintf("%s answered %q", r.name, a))
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() (int, []string) {
		close(done)
		<-polled // the goroutine's writes happen before this
		return polls, changed
	}
}

// memberOf maps member names to replicas.
func memberOf(rs []*replica) map[string]*replica {
	m := map[string]*replica{}
	for _, r := range rs {
		m[r.member] = r
	}
	return m
}

// countedNginx is a real nginx that logs every request, so that the tests
// count the probes that reach a backend; it may run in a network namespace.
type countedNginx struct {
	name string
	ip   string
	ns   string
	argv []string // the command that runs nginx
	conf nginxproc.Config
	proc *corednsproc.Process
}

// startPrimaryNginx is the primary of a cluster test: US EAST at
// PREFIX.100, counting its requests.
func startPrimaryNginx(t *testing.T, prefix string) *countedNginx {
	t.Helper()
	return startCountedNginx(t, "US EAST", "", prefix+".100", freeSharedPort(t, prefix+".100"), nil)
}

// startPrimaryCluster starts n replicas with observers 2 sharing a check of
// that primary, PREFIX.101 the secondary of name, and waits until they are
// one cluster answering the primary.
func startPrimaryCluster(t *testing.T, prefix string, n int, zone, name string) (*countedNginx, string, []*replica) {
	t.Helper()
	east := startPrimaryNginx(t, prefix)
	secondary := prefix + ".101"
	rs := newReplicas(t, prefix, n, zone, "observers 2", clusterCheck("east", east, "/health")+clusterRecord(name, east.ip, secondary))
	startAll(t, rs)
	waitMembers(t, rs, n, 20*time.Second)
	waitAnswers(t, rs, name, east.ip, 10*time.Second)
	return east, secondary, rs
}

// startCountedNginx writes the config and starts nginx on ip:port; it is
// stopped when the test ends. in makes the command run in a namespace.
func startCountedNginx(t *testing.T, name, ns, ip string, port int, in func(name string, args ...string) []string) *countedNginx {
	t.Helper()
	prefix := t.TempDir()
	// nginx's worker may run as another user; it must read its prefix.
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &countedNginx{name: name, ip: ip, ns: ns, conf: nginxproc.Config{
		Prefix:      prefix,
		Listen:      net.JoinHostPort(ip, strconv.Itoa(port)),
		Connections: 256,
		AccessLog:   true,
		Page:        name,
	}}
	if err := b.conf.Write(); err != nil {
		t.Fatal(err)
	}
	args := b.conf.Args()
	b.argv = append([]string{nginxBin}, args...)
	if in != nil {
		b.argv = in(nginxBin, args...)
	}
	t.Cleanup(func() {
		if b.proc != nil && !b.proc.Stop(syscall.SIGTERM, 5*time.Second) {
			t.Logf("nginx %s ignored SIGTERM; killed it", name)
		}
		if t.Failed() && b.proc != nil {
			t.Logf("nginx %s (%s) error.log:\n%s%s", name, b.addr(), b.conf.ErrorLog(), b.proc.Output())
		}
	})
	b.start(t)
	return b
}

func (b *countedNginx) addr() string { return b.conf.Listen }

// start runs nginx and returns once its port accepts connections.
func (b *countedNginx) start(t *testing.T) {
	t.Helper()
	p, err := corednsproc.Run(b.argv[0], b.argv[1:]...)
	if err != nil {
		t.Fatalf("start nginx %s: %v", b.name, err)
	}
	b.proc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialIn(b.ns, "tcp", b.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if p.Exited() {
			t.Fatalf("nginx %s exited at start (%v):\n%s%s", b.name, p.State(), b.conf.ErrorLog(), p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx %s does not accept connections on %s: %v", b.name, b.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop is nginx's fast shutdown; the port refuses connections after it.
func (b *countedNginx) stop(t *testing.T) {
	t.Helper()
	if !b.proc.Stop(syscall.SIGTERM, 10*time.Second) {
		t.Fatalf("nginx %s still running 10s after SIGTERM", b.name)
	}
}

// requests counts the requests for path in the access log so far.
func (b *countedNginx) requests(t *testing.T, path string) int {
	t.Helper()
	n, err := b.conf.Requests(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// check is a healthfailover check of the cluster tests against b's path.
func clusterCheck(name string, b *countedNginx, path string) string {
	return fmt.Sprintf(`        check %s http://%s%s {
            interval %s
            failure_threshold %d
        }
`, name, b.addr(), path, clusterInterval, clusterThreshold)
}
