package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/miekg/dns"
)

// loadMember is one member of a record set of this test; backend is nil
// for a member without a check (always healthy).
type loadMember struct {
	tier    int
	ip      string
	check   string
	backend *fakebackend.HTTP // switched by the test; it remembers when
}

type loadSet struct {
	name    string // in example.org, served by healthfailover
	hosts   string // the same name in example.net, served by hosts
	members []loadMember
}

// transitionLine is the plugin's log line for a health transition; the
// check may be prefixed with the server block it belongs to.
var transitionLine = regexp.MustCompile(`(?m)plugin/healthfailover: (?:\S+: )?check \S+: (?:un)?healthy -> `)

// dnsperf's summary lines.
var (
	dnsperfSent      = regexp.MustCompile(`Queries sent:\s+([0-9]+)`)
	dnsperfCompleted = regexp.MustCompile(`Queries completed:\s+([0-9]+)`)
	dnsperfLost      = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	dnsperfNoerror   = regexp.MustCompile(`Response codes:\s+NOERROR\s+([0-9]+)`)
	dnsperfQPS       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
)

type dnsperfRun struct {
	server                         string // "healthfailover" or "hosts"
	sent, completed, lost, noerror int
	qps                            float64
}

func (r dnsperfRun) lossPercent() float64 { return 100 * float64(r.lost) / float64(max(r.sent, 1)) }

// TestFlappingUnderDnsperfLoad drives CoreDNS at saturation with dnsperf
// while the checked backends flip up and down every few hundred ms, and
// judges the answers a Go client gets meanwhile against the backends' real
// state. It reports the queries dnsperf lost beside those of a hosts server
// block in the same process, serving the same names and answers: a figure,
// not an assertion (bench/throughput.sh and bench/failover-time.sh measure
// throughput and loss).
func TestFlappingUnderDnsperfLoad(t *testing.T) {
	requireE2E(t)
	dnsperfBin := requireTool(t, "dnsperf", "/usr/bin/dnsperf", "dnsperf")
	const (
		interval = 100 * time.Millisecond
		// Two failures to go down, so that one probe slowed past its
		// timeout by a saturated machine does not fail a backend that is
		// up; one success to come back.
		failureThreshold = 2
		timeout          = interval // the default timeouts shrink to the interval
		// How long an answer may lag the backends: the probes that notice
		// a change (the first one up to an interval after it), one probe's
		// timeout, and slack for timers that fire late on a saturated
		// 2-core machine.
		lag     = interval*failureThreshold + timeout + 500*time.Millisecond
		flipMin = 250 * time.Millisecond
		flipMax = 2 * time.Second

		runSeconds = 5
		runs       = 4 // alternating healthfailover, hosts, healthfailover, hosts
		clientWait = time.Second
		clientGap  = 5 * time.Millisecond
	)

	ip := func(i int) string { return fmt.Sprintf("127.0.60.%d", i) }
	backends := make([]*fakebackend.HTTP, 5)
	for i := range backends {
		backends[i] = fakebackend.NewHTTP(t, fakebackend.Options{IP: ip(i + 1)})
	}
	sets := []loadSet{
		{name: "mixed.example.org.", hosts: "mixed.example.net.", members: []loadMember{
			{tier: 1, ip: ip(1), check: "b1", backend: backends[0]},
			{tier: 1, ip: ip(2), check: "b2", backend: backends[1]},
			{tier: 2, ip: ip(3), check: "b3", backend: backends[2]},
			{tier: 3, ip: "127.0.61.1"},
		}},
		{name: "pair.example.org.", hosts: "pair.example.net.", members: []loadMember{
			{tier: 1, ip: ip(4), check: "b4", backend: backends[3]},
			{tier: 2, ip: ip(5), check: "b5", backend: backends[4]},
		}},
	}

	var block, hosts, hfQueries, hostsQueries strings.Builder
	for i, b := range backends {
		fmt.Fprintf(&block, `
        check b%d http://%s/health {
            interval %s
            failure_threshold %d
            success_threshold 1
        }`, i+1, b.Addr(), interval, failureThreshold)
	}
	for _, s := range sets {
		fmt.Fprintf(&block, "\n        record %s A {\n", s.name)
		for _, m := range s.members {
			fmt.Fprintf(&block, "            tier %d %s", m.tier, m.ip)
			if m.check != "" {
				fmt.Fprintf(&block, " check %s", m.check)
			}
			block.WriteString("\n")
			// The hosts block answers what healthfailover answers with
			// its primaries up: the same names, the same sizes.
			if m.tier == 1 {
				fmt.Fprintf(&hosts, "        %s %s\n", m.ip, s.hosts)
			}
		}
		block.WriteString("        }")
		fmt.Fprintf(&hfQueries, "%s A\n", s.name)
		fmt.Fprintf(&hostsQueries, "%s A\n", s.hosts)
	}

	dnsPort, hostsPort, readyPort := freeDNSPort(t), freeDNSPort(t), freeTCPPort(t)
	for i := 0; hostsPort == dnsPort && i < 10; i++ {
		hostsPort = freeDNSPort(t)
	}
	corefile := corefileFor(dnsPort, readyPort, "", block.String()) + fmt.Sprintf(`
example.net:%d {
    bind 127.0.0.1
    hosts {
%s        no_reload
    }
}
`, hostsPort, hosts.String())
	c := startCorefile(t, corefile, dnsPort, readyPort, true)
	began := time.Now()

	dir := t.TempDir()
	queryFile := map[string]string{"healthfailover": filepath.Join(dir, "hf.txt"), "hosts": filepath.Join(dir, "hosts.txt")}
	port := map[string]int{"healthfailover": dnsPort, "hosts": hostsPort}
	for server, text := range map[string]string{"healthfailover": hfQueries.String(), "hosts": hostsQueries.String()} {
		if err := os.WriteFile(queryFile[server], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Both blocks answer before the load starts.
	for _, s := range sets {
		waitReply(t, c, s.name, time.Now(), 5*time.Second, "an answer", func(r reply) bool { return r.rcode == "NOERROR" && len(r.addrs) > 0 })
		hr, err := dnsQuery(net.JoinHostPort("127.0.0.1", strconv.Itoa(hostsPort)), s.hosts, "udp")
		if err != nil || hr.rcode != "NOERROR" || len(hr.addrs) == 0 {
			t.Fatalf("hosts block: %s: %v %v", s.hosts, hr, err)
		}
	}

	stop := make(chan struct{})
	var background sync.WaitGroup
	// Flip every backend at its own random pace.
	for _, b := range backends {
		background.Add(1)
		go func() {
			defer background.Done()
			up := true
			for range int(time.Duration(runs*runSeconds)*time.Second/flipMin) + 10 {
				timer := time.NewTimer(flipMin + rand.N(flipMax-flipMin))
				select {
				case <-stop:
					timer.Stop()
					return
				case <-timer.C:
				}
				up = !up
				b.SetUp(up)
			}
		}()
	}

	// The Go client: every answer it gets is judged against the backends.
	type clientTally struct {
		answers, errors, constrained, failover int
		violations                             []string
		nViolations                            int
	}
	var tally clientTally
	background.Add(1)
	go func() {
		defer background.Done()
		client := &dns.Client{Net: "udp", Timeout: clientWait}
		tick := time.NewTicker(clientGap)
		defer tick.Stop()
		for i := 0; i < int(time.Duration(runs*runSeconds+30)*time.Second/clientGap); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			s := sets[i%len(sets)]
			m := new(dns.Msg)
			m.SetQuestion(s.name, dns.TypeA)
			sent := time.Now()
			r, _, err := client.Exchange(m, c.dnsAddr)
			received := time.Now()
			if err != nil || r.Rcode != dns.RcodeSuccess {
				tally.errors++
				continue
			}
			tally.answers++
			var got []string
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok {
					got = append(got, a.A.String())
				}
			}
			constrained, failover, problems := judgeAnswer(s, got, sent.Add(-lag), received)
			if constrained {
				tally.constrained++
			}
			if failover {
				tally.failover++
			}
			for _, p := range problems {
				tally.nViolations++
				if len(tally.violations) < 20 {
					tally.violations = append(tally.violations, fmt.Sprintf("%s at +%s: %v: %s", s.name, sent.Sub(began).Round(time.Millisecond), got, p))
				}
			}
		}
	}()

	// dnsperf at saturation, alternating the two blocks so that any drift
	// of the machine's load hits both alike.
	var results []dnsperfRun
	for i := range runs {
		server := []string{"healthfailover", "hosts"}[i%2]
		results = append(results, runDnsperf(t, dnsperfBin, server, port[server], queryFile[server], runSeconds))
	}
	close(stop)
	background.Wait()

	sum := map[string]*dnsperfRun{"healthfailover": {server: "healthfailover"}, "hosts": {server: "hosts"}}
	for _, r := range results {
		report(t, "dnsperf %-14s sent %d, completed %d, lost %d (%.3f%%), NOERROR %d, %.0f qps",
			r.server, r.sent, r.completed, r.lost, r.lossPercent(), r.noerror, r.qps)
		s := sum[r.server]
		s.sent += r.sent
		s.completed += r.completed
		s.lost += r.lost
		if r.sent == 0 || r.noerror != r.completed {
			t.Errorf("dnsperf against %s: %d sent, %d completed but only %d NOERROR", r.server, r.sent, r.completed, r.noerror)
		}
	}
	hf, ho := sum["healthfailover"], sum["hosts"]
	transitions := len(transitionLine.FindAllString(c.Output(), -1))
	report(t, "query loss: healthfailover %.3f%% (%d of %d), hosts %.3f%% (%d of %d); %d health transitions during the runs",
		hf.lossPercent(), hf.lost, hf.sent, ho.lossPercent(), ho.lost, ho.sent, transitions)
	report(t, "Go client: %d answers (%d errors or timeouts), %d judged under a constraint, %d from a failover tier, %d violations (lag allowed %s)",
		tally.answers, tally.errors, tally.constrained, tally.failover, tally.nViolations, lag)

	if tally.nViolations > 0 {
		t.Errorf("%d answers named a backend down for more than %s while a better one was up that long:", tally.nViolations, lag)
		for _, v := range tally.violations {
			t.Errorf("  %s", v)
		}
	}
	// The test judged something: the backends flipped, answers failed
	// over, and many answers fell where the invariant binds.
	if transitions < 20 {
		t.Errorf("only %d health transitions: the backends did not flap", transitions)
	}
	if tally.answers < 500 || tally.constrained < 100 || tally.failover < 20 {
		t.Errorf("the Go client got %d answers, %d under a constraint, %d from a failover tier: too few to judge", tally.answers, tally.constrained, tally.failover)
	}
	// Saturation may drop a few of the client's queries, as of dnsperf's.
	if tally.errors > tally.answers/20 {
		t.Errorf("the Go client had %d errors for %d answers", tally.errors, tally.answers)
	}
}

// judgeAnswer checks one answer of s, received by received, against the
// backends' state held steadily over [from, received] (from is the query's
// time less the lag allowed). A member is steadily down when its backend
// was down over the whole window, steadily up when it was up (or has no
// check). Then an answer must not name a steadily-down member while some
// member is steadily up (the set has a healthy member, so it does not fail
// open), nor a member of a tier worse than a steadily-up one.
// constrained says whether either rule could bite; failover whether the
// answer came from a tier after the first.
func judgeAnswer(s loadSet, got []string, from, received time.Time) (constrained, failover bool, problems []string) {
	steadyUp := map[string]bool{}
	steadyDown := map[string]bool{}
	bestUp := 0
	for _, m := range s.members {
		up, ok := true, true
		if m.backend != nil {
			up, ok = m.backend.Steady(from, received)
		}
		switch {
		case ok && up:
			steadyUp[m.ip] = true
			if bestUp == 0 || m.tier < bestUp {
				bestUp = m.tier
			}
		case ok:
			steadyDown[m.ip] = true
		}
	}
	for _, m := range s.members {
		if bestUp > 0 && (steadyDown[m.ip] || m.tier > bestUp) {
			constrained = true
		}
	}
	for _, addr := range got {
		i := slices.IndexFunc(s.members, func(m loadMember) bool { return m.ip == addr })
		if i < 0 {
			problems = append(problems, addr+" is no member of the set")
			continue
		}
		m := s.members[i]
		if m.tier > 1 {
			failover = true
		}
		switch {
		case bestUp > 0 && steadyDown[m.ip]:
			problems = append(problems, fmt.Sprintf("%s (tier %d) is down while the set has a member up (best: tier %d)", m.ip, m.tier, bestUp))
		case bestUp > 0 && m.tier > bestUp:
			problems = append(problems, fmt.Sprintf("%s is tier %d, and a tier %d member is up", m.ip, m.tier, bestUp))
		}
	}
	return constrained, failover, problems
}

// runDnsperf runs dnsperf at saturation against one server block: four
// clients, one thread, up to 100 queries in flight, for seconds.
func runDnsperf(t *testing.T, bin, server string, port int, queryFile string, seconds int) dnsperfRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	args := []string{"-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queryFile,
		"-l", strconv.Itoa(seconds), "-c", "4", "-T", "1", "-q", "100", "-t", "2"}
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	field := func(re *regexp.Regexp, optional bool) string {
		m := re.FindSubmatch(out)
		if m == nil {
			if !optional {
				t.Fatalf("dnsperf output has no %q:\n%s", re, out)
			}
			return "0"
		}
		return string(m[1])
	}
	r := dnsperfRun{server: server}
	r.sent, _ = strconv.Atoi(field(dnsperfSent, false))
	r.completed, _ = strconv.Atoi(field(dnsperfCompleted, false))
	r.lost, _ = strconv.Atoi(field(dnsperfLost, false))
	// No NOERROR line when nothing came back: the caller reports it.
	r.noerror, _ = strconv.Atoi(field(dnsperfNoerror, true))
	r.qps, _ = strconv.ParseFloat(field(dnsperfQPS, false), 64)
	return r
}
