package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/miekg/dns"
)

// The cluster tests run replicas of one CoreDNS configuration side by side:
// a replica shares its checks only with replicas whose server blocks have
// the same keys (zones and port), so on one machine every replica serves
// the same DNS port on an address of its own (the bind plugin), and its
// ready, metrics, status and gossip listeners on that address too.

// Timings of the cluster tests: short, so that a failover takes about a
// second and the tests a few seconds each.
const (
	clusterInterval  = 500 * time.Millisecond
	clusterThreshold = 2
)

// clusterPorts are the ports every replica of a test uses, each on its own
// address.
type clusterPorts struct {
	dns, ready, metrics, status, gossip int
}

// freeClusterPorts finds ports free on every one of ips: DNS and gossip for
// UDP and TCP, the HTTP ones for TCP.
func freeClusterPorts(t *testing.T, ips ...string) clusterPorts {
	t.Helper()
	var taken []int
	pick := func(udp bool) int {
		p := freePortOnAll(t, udp, taken, ips)
		taken = append(taken, p)
		return p
	}
	return clusterPorts{dns: pick(true), ready: pick(false), metrics: pick(false), status: pick(false), gossip: pick(true)}
}

// freePortOnAll tries ports from a random place below the kernel's
// ephemeral range, so that two runs at once seldom try the same ones.
func freePortOnAll(t *testing.T, udp bool, except []int, ips []string) int {
	t.Helper()
	start := 20000 + rand.IntN(10000)
	for i := range 2000 {
		port := start + i
		if !slices.Contains(except, port) && portFreeFor(port, udp, ips) {
			return port
		}
	}
	t.Fatalf("no port free on all of %v from %d on", ips, start)
	return 0
}

func portFreeFor(port int, udp bool, ips []string) bool {
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

// replica is one CoreDNS of a cluster. On the host it listens on its own
// loopback address; in a network namespace (ns) it serves DNS, ready,
// metrics and status on the namespace's 127.0.0.1 and gossips on ip.
type replica struct {
	name     string // the test's name for it: r1, r2, …
	ip       string // gossip address, and where it serves on the host
	ns       string
	ports    clusterPorts
	corefile string
	bin      []string // the command that runs CoreDNS; default corednsBin

	proc   *corednsproc.Process
	member string // its memberlist name in this life, from its log
	lives  int
}

// serveIP is where the replica answers DNS, /ready, /metrics and /status.
func (r *replica) serveIP() string {
	if r.ns != "" {
		return "127.0.0.1"
	}
	return r.ip
}

func (r *replica) dnsAddr() string { return net.JoinHostPort(r.serveIP(), strconv.Itoa(r.ports.dns)) }
func (r *replica) gossipAddr() string {
	return net.JoinHostPort(r.ip, strconv.Itoa(r.ports.gossip))
}

// clusterBlock is one server block of a replica: zone on the shared DNS
// port, with ready, prometheus and the plugin's status on the replica's
// address, and a cluster block gossiping on it and joining join. opts are
// more lines of the cluster block, body the checks and records.
func (r *replica) serverBlock(zone string, join []string, opts, body string) string {
	joinLine := ""
	if len(join) > 0 {
		joinLine = "join " + strings.Join(join, " ")
	}
	ip := r.serveIP()
	return fmt.Sprintf(`%s:%d {
    bind %s
    ready %s:%d
    prometheus %s:%d
    healthfailover %s {
        status %s:%d
        cluster {
            bind %s
            %s
            %s
        }
%s
    }
}
`, zone, r.ports.dns, ip, ip, r.ports.ready, ip, r.ports.metrics, zone, ip, r.ports.status, r.gossipAddr(), joinLine, opts, body)
}

// newReplicas makes n replicas on the host at prefix.1 … prefix.n, all
// joining all, with one server block for zone. Nothing starts.
func newReplicas(t *testing.T, prefix string, n int, zone, opts, body string) []*replica {
	t.Helper()
	var ips []string
	for i := 1; i <= n; i++ {
		ips = append(ips, fmt.Sprintf("%s.%d", prefix, i))
	}
	ports := freeClusterPorts(t, ips...)
	var rs []*replica
	var join []string
	for i, ip := range ips {
		rs = append(rs, &replica{name: fmt.Sprintf("r%d", i+1), ip: ip, ports: ports})
		join = append(join, rs[i].gossipAddr())
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
			t.Logf("%s (%s, life %d) Corefile:\n%s\noutput:\n%s", r.name, r.ip, life, r.corefile, p.Output())
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
		code, body, err := r.get("/ready", r.ports.ready)
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

// httpClient reaches a replica in its namespace.
func (r *replica) httpClient() *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(r.ns, network, addr, 2*time.Second)
		},
	}}
}

// get fetches path from the replica's HTTP listener at port.
func (r *replica) get(path string, port int) (int, string, error) {
	resp, err := r.httpClient().Get("http://" + net.JoinHostPort(r.serveIP(), strconv.Itoa(port)) + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(body), err
}

// query asks the replica for name's A records over UDP.
func (r *replica) query(name string) (reply, error) {
	conn, err := dialIn(r.ns, "udp", r.dnsAddr(), 2*time.Second)
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

// clusterStatus is what a replica's /status says of one check in a cluster.
type clusterStatus struct {
	Block   string `json:"block"`
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Cluster *struct {
		Observers []string `json:"observers"`
		Views     []struct {
			Member     string  `json:"member"`
			Observer   bool    `json:"observer"`
			Fresh      bool    `json:"fresh"`
			Healthy    bool    `json:"healthy"`
			Message    string  `json:"message"`
			AgeSeconds float64 `json:"age_seconds"`
		} `json:"views"`
	} `json:"cluster"`
}

// checkStatus reads /status and returns the check named check of the block
// whose key starts with zone.
func (r *replica) checkStatus(zone, check string) (clusterStatus, error) {
	code, body, err := r.get("/status", r.ports.status)
	if err != nil {
		return clusterStatus{}, err
	}
	if code != http.StatusOK {
		return clusterStatus{}, fmt.Errorf("/status: %d", code)
	}
	var doc struct {
		Checks []clusterStatus `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return clusterStatus{}, fmt.Errorf("/status: %v", err)
	}
	for _, c := range doc.Checks {
		if c.Name == check && strings.HasPrefix(strings.TrimPrefix(c.Block, "dns://"), zone) {
			if c.Cluster == nil {
				return c, fmt.Errorf("/status: check %s of %s has no cluster section", check, c.Block)
			}
			return c, nil
		}
	}
	return clusterStatus{}, fmt.Errorf("/status has no check %s in %s: %s", check, zone, body)
}

// view is whether the replica holds a fresh view of check by member, and
// what it says.
func (s clusterStatus) view(member string) (fresh, healthy bool) {
	for _, v := range s.Cluster.Views {
		if v.Member == member {
			return v.Fresh, v.Healthy
		}
	}
	return false, false
}

// metrics reads the replica's /metrics.
func (r *replica) metrics() (string, error) {
	code, body, err := r.get("/metrics", r.ports.metrics)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("/metrics: %d", code)
	}
	return body, err
}

// metricSum adds up the samples of the metric name in text whose labels
// contain every one of match (such as `reason="malformed"`).
func metricSum(text, name string, match ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
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
	return sum
}

// metric reads one sum from the replica's /metrics; -1 when it cannot.
func (r *replica) metric(name string, match ...string) float64 {
	text, err := r.metrics()
	if err != nil {
		return -1
	}
	return metricSum(text, name, match...)
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
	name   string
	ip     string
	port   int
	ns     string
	argv   []string // the command that runs nginx
	prefix string
	proc   *corednsproc.Process
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
	b := &countedNginx{name: name, ip: ip, port: port, ns: ns, prefix: prefix}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", conf, "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-g", "daemon off;"}
	b.argv = append([]string{nginxBin}, args...)
	if in != nil {
		b.argv = in(nginxBin, args...)
	}
	t.Cleanup(func() {
		if b.proc != nil && !b.proc.Stop(syscall.SIGTERM, 5*time.Second) {
			t.Logf("nginx %s ignored SIGTERM; killed it", name)
		}
		if t.Failed() && b.proc != nil {
			errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Logf("nginx %s (%s) error.log:\n%s%s", name, b.addr(), errLog, b.proc.Output())
		}
	})
	b.start(t)
	return b
}

func (b *countedNginx) addr() string { return net.JoinHostPort(b.ip, strconv.Itoa(b.port)) }

func (b *countedNginx) config() string {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	p := b.prefix
	return fmt.Sprintf(`%s
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 256; }
http {
    access_log %s/access.log;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    default_type text/plain;
    server {
        listen %s;
        location / { return 200 "%s\n"; }
    }
}
`, user, p, p, p, p, p, p, p, p, b.addr(), b.name)
}

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
			errLog, _ := os.ReadFile(filepath.Join(b.prefix, "error.log"))
			t.Fatalf("nginx %s exited at start (%v):\n%s%s", b.name, p.State(), errLog, p.Output())
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
	data, err := os.ReadFile(filepath.Join(b.prefix, "access.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(data), `"GET `+path+` `)
}

// check is a healthfailover check of the cluster tests against b's path.
func clusterCheck(name string, b *countedNginx, path string) string {
	return fmt.Sprintf(`        check %s http://%s%s {
            interval %s
            failure_threshold %d
        }
`, name, b.addr(), path, clusterInterval, clusterThreshold)
}
