// Command failovertime measures how long healthfailover takes to stop
// answering with a backend that fails, and to answer with it again once it
// recovers, as a client sees it in DNS answers.
//
//	failovertime -coredns BIN [-trials 20] [-modes refused,http500,hang,slow] [-fast 100ms] [-load 5000]
//
// It starts one HTTP backend per failure mode on its own loopback address
// (127.0.0.21, .22, …), whose behaviour it flips in-process, and CoreDNS (the
// binary given) as a separate process with one record set per mode:
// primary = the backend's address, checked; secondary = 127.0.9.N,
// unchecked. dnsperf holds a steady load (-Q) on the same server meanwhile.
// A client queries every -poll (5 ms) over UDP.
//
// A trial: with the primary answering, wait a random fraction of an interval
// (so that failures land at every phase of the probe schedule), make the
// backend fail, and time until the first answer without the primary
// (failover); wait again, heal it, and time until the first answer with it
// (failback). Between the two it keeps querying, and a wrong answer (the
// primary back while the backend still fails, or gone while it is healthy)
// is reported as a flap. The bound on each is threshold × interval +
// timeout + 100 ms. The exit status is 1 when a trial exceeded it, flapped
// or did not finish.
//
// With -fast, a second table compares the refused mode without and with
// fast_interval: two more backends (127.0.0.31 and .32), whose checks differ
// only in fast_interval, their trials run side by side. With it, the bound
// is interval + (threshold − 1) × fast_interval + timeout + 100 ms. -modes ""
// leaves the first table out.
package main

import (
	"flag"
	"fmt"
	"github.com/healthfailover/healthfailover/internal/report"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/healthfailover/healthfailover/internal/loopback"
)

type config struct {
	coredns, dnsperf  string
	trials            int
	modes             []string
	interval, timeout time.Duration
	failures, success int
	fast              time.Duration // fast_interval of the second table; 0 for none
	slow, poll        time.Duration
	load              int
	giveUp            time.Duration
	verbose           bool
	work              string
}

func main() {
	var c config
	var modes string
	flag.StringVar(&c.coredns, "coredns", "", "CoreDNS binary built with healthfailover (required)")
	flag.StringVar(&c.dnsperf, "dnsperf", "dnsperf", "dnsperf binary, for the background load")
	flag.IntVar(&c.trials, "trials", 20, "trials per failure mode")
	flag.StringVar(&modes, "modes", strings.Join(allModes, ","), "failure modes: "+strings.Join(allModes, ", "))
	flag.DurationVar(&c.interval, "interval", 200*time.Millisecond, "check interval")
	flag.DurationVar(&c.timeout, "timeout", 100*time.Millisecond, "connect_timeout and response_timeout of the checks")
	flag.IntVar(&c.failures, "failure-threshold", 2, "failure_threshold")
	flag.IntVar(&c.success, "success-threshold", 2, "success_threshold")
	flag.DurationVar(&c.fast, "fast", 100*time.Millisecond, "fast_interval of the table with and without it (refused mode; 0: no such table)")
	flag.DurationVar(&c.slow, "slow", 300*time.Millisecond, "how late the slow backend answers (more than -timeout)")
	flag.DurationVar(&c.poll, "poll", 5*time.Millisecond, "how often the client queries")
	flag.IntVar(&c.load, "load", 5000, "dnsperf -Q: background queries per second on the same server (0: none)")
	flag.DurationVar(&c.giveUp, "give-up", 5*time.Second, "a trial that sees no change within this fails")
	flag.BoolVar(&c.verbose, "v", false, "print every trial")
	flag.StringVar(&c.work, "work", "", "directory for the Corefile and logs (default: a temporary one, removed)")
	flag.Parse()
	if modes != "" {
		c.modes = strings.Split(modes, ",")
	}
	for _, m := range c.modes {
		if !slices.Contains(allModes, m) {
			log.Fatalf("failovertime: unknown mode %q (want %s)", m, strings.Join(allModes, ", "))
		}
	}
	if c.coredns == "" || c.trials < 1 || c.slow <= c.timeout || c.timeout > c.interval {
		log.Fatal("failovertime: need -coredns, -trials ≥ 1, -slow > -timeout and -timeout ≤ -interval")
	}
	if c.fast != 0 && (c.fast < 100*time.Millisecond || c.fast > c.interval) {
		log.Fatal("failovertime: -fast is a fast_interval: 100ms to -interval, or 0")
	}
	if len(c.modes) == 0 && c.fast == 0 {
		log.Fatal("failovertime: no mode and no -fast: nothing to measure")
	}
	ok, err := run(c)
	if err != nil {
		log.Fatalf("failovertime: %v", err)
	}
	if !ok {
		os.Exit(1)
	}
}

// result is one backend's measurements.
type result struct {
	name               string
	fast               time.Duration // its check's fast_interval
	failover, failback []time.Duration
	flaps, unfinished  int
	notes              []string
}

// bounds are the longest a failover and a failback may take: the failure
// lands just after a probe; then threshold probes an interval apart, or
// the first an interval away and the others fast apart; plus a probe's
// timeout and 100 ms for the client to see it.
func bounds(c config, fast time.Duration) (down, up time.Duration) {
	slack := c.timeout + 100*time.Millisecond
	if fast > 0 {
		return c.interval + time.Duration(c.failures-1)*fast + slack, c.interval + time.Duration(c.success-1)*fast + slack
	}
	return time.Duration(c.failures)*c.interval + slack, time.Duration(c.success)*c.interval + slack
}

func run(c config) (bool, error) {
	if c.work == "" {
		dir, err := os.MkdirTemp("", "failovertime")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		c.work = dir
	}

	var modes, variants []*backend
	for i, m := range c.modes {
		b, err := newBackend(m, m, fmt.Sprintf("127.0.0.%d", 21+i), c.slow)
		if err != nil {
			return false, err
		}
		defer b.Close()
		modes = append(modes, b)
	}
	if c.fast > 0 {
		for i, name := range []string{"nofast", "fast"} {
			b, err := newBackend(name, modeRefused, fmt.Sprintf("127.0.0.%d", 31+i), c.slow)
			if err != nil {
				return false, err
			}
			defer b.Close()
			variants = append(variants, b)
		}
	}
	all := append(slices.Clone(modes), variants...)

	dnsPort, err := loopback.DNSPort()
	if err != nil {
		return false, err
	}
	readyPort, err := loopback.TCPPort()
	if err != nil {
		return false, err
	}
	queries := filepath.Join(c.work, "queries")
	var q strings.Builder
	for _, b := range all {
		fmt.Fprintf(&q, "%s.ft.test A\n", b.name)
	}
	if err := os.WriteFile(queries, []byte(q.String()), 0o644); err != nil {
		return false, err
	}

	dns, err := corednsproc.Start(c.coredns, c.work, corefile(c, all, dnsPort, readyPort))
	if err != nil {
		return false, err
	}
	defer dns.Stop(syscall.SIGTERM, 5*time.Second)
	if err := dns.WaitReady(net.JoinHostPort("127.0.0.1", strconv.Itoa(readyPort)), 30*time.Second); err != nil {
		return false, err
	}
	server := net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort))

	var load *dnsperfLoad
	if c.load > 0 {
		// A limit well past the longest the trials can take; stopped at the end.
		limit := time.Duration((len(c.modes)+1)*c.trials)*(2*c.giveUp+4*c.interval) + time.Minute
		if load, err = startLoad(c.dnsperf, "127.0.0.1", dnsPort, c.load, queries, limit); err != nil {
			return false, err
		}
		time.Sleep(500 * time.Millisecond)
		if load.p.Exited() {
			return false, fmt.Errorf("dnsperf exited at start:\n%s", load.p.Output())
		}
	}

	client, err := newPoller(server, c.poll)
	if err != nil {
		return false, err
	}
	defer client.close()

	started := time.Now()
	var results []*result
	for _, b := range modes {
		results = append(results, measure(c, client, b, 0))
	}
	// The two variants side by side, each with a client of its own: the
	// same machine, the same moment, only fast_interval differs.
	compared := make([]*result, len(variants))
	var wg sync.WaitGroup
	for i, b := range variants {
		cl, err := newPoller(server, c.poll)
		if err != nil {
			return false, err
		}
		defer cl.close()
		fast := time.Duration(0)
		if b.name == "fast" {
			fast = c.fast
		}
		wg.Go(func() { compared[i] = measure(c, cl, b, fast) })
	}
	wg.Wait()
	elapsed := time.Since(started)

	loadSummary := "none"
	if load != nil {
		loadSummary = "dnsperf -Q " + strconv.Itoa(c.load) + ": " + load.finish()
	}
	ok := printReport(c, results, compared, loadSummary, elapsed, dns.Output())
	if dns.Exited() {
		return false, fmt.Errorf("CoreDNS exited during the trials:\n%s", dns.Output())
	}
	if logged := errorLines(dns.Output()); logged != "" {
		fmt.Printf("\nCoreDNS logged errors:\n%s\n", logged)
		ok = false
	}
	return ok, nil
}

func corefile(c config, backends []*backend, dnsPort, readyPort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ft.test:%d {\n    bind 127.0.0.1\n    ready 127.0.0.1:%d\n    healthfailover {\n", dnsPort, readyPort)
	for i, be := range backends {
		fast := ""
		if be.name == "fast" {
			fast = "\n            fast_interval " + c.fast.String()
		}
		fmt.Fprintf(&b, `        check %s http://%s/health {
            interval %s%s
            connect_timeout %s
            response_timeout %s
            failure_threshold %d
            success_threshold %d
        }
        record %s.ft.test A {
            primary %s check %s
            secondary 127.0.9.%d
        }
`, be.name, be.Addr(), c.interval, fast, c.timeout, c.timeout, c.failures, c.success, be.name, be.IP(), be.name, i+1)
	}
	b.WriteString("    }\n}\n")
	return b.String()
}

// measure runs the trials of one backend, whose check has fast_interval fast.
func measure(c config, client *poller, b *backend, fast time.Duration) *result {
	r := &result{name: b.name, fast: fast}
	name := b.name + ".ft.test."
	hasPrimary := func(a []string) bool { return slices.Contains(a, b.IP()) }
	// settle waits a random fraction of an interval, plus one, checking that
	// the answer keeps holding.
	settle := func(want func([]string) bool, what string) {
		d := c.interval + rand.N(c.interval)
		if bad, answer := client.holds(name, want, d); bad {
			r.flaps++
			r.notes = append(r.notes, fmt.Sprintf("%s: answer %v while %s", b.name, answer, what))
		}
	}

	// The first trial starts from a primary that answers.
	if _, _, err := client.until(name, hasPrimary, c.giveUp); err != nil {
		r.unfinished++
		r.notes = append(r.notes, fmt.Sprintf("%s: primary not answering at the start: %v", b.name, err))
		return r
	}
	for t := range c.trials {
		settle(hasPrimary, "healthy (before the failure)")
		at := time.Now()
		b.fail()
		seen, answer, err := client.until(name, func(a []string) bool { return !hasPrimary(a) }, c.giveUp)
		if err != nil {
			r.unfinished++
			r.notes = append(r.notes, fmt.Sprintf("%s trial %d: failover: %v", b.name, t+1, err))
			b.heal()
			client.until(name, hasPrimary, c.giveUp)
			continue
		}
		d := seen.Sub(at)
		r.failover = append(r.failover, d)
		if want := "127.0.9."; len(answer) != 1 || !strings.HasPrefix(answer[0], want) {
			r.notes = append(r.notes, fmt.Sprintf("%s trial %d: failover answered %v, not the secondary", b.name, t+1, answer))
		}
		settle(func(a []string) bool { return !hasPrimary(a) }, "failing")

		at = time.Now()
		if err := b.heal(); err != nil {
			r.notes = append(r.notes, err.Error())
		}
		seen, _, err = client.until(name, hasPrimary, c.giveUp)
		if err != nil {
			r.unfinished++
			r.notes = append(r.notes, fmt.Sprintf("%s trial %d: failback: %v", b.name, t+1, err))
			continue
		}
		d2 := seen.Sub(at)
		r.failback = append(r.failback, d2)
		if c.verbose {
			fmt.Printf("%-8s trial %2d: failover %6.1f ms, failback %6.1f ms\n", b.name, t+1, ms(d), ms(d2))
		}
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printReport(c config, results, compared []*result, load string, elapsed time.Duration, corednsLog string) bool {
	ok := true
	if len(results) > 0 {
		down, up := bounds(c, 0)
		fmt.Printf("\nFailover and failback times as a DNS client sees them (interval %s, failure_threshold %d, success_threshold %d, timeouts %s; client polls every %s)\n",
			c.interval, c.failures, c.success, c.timeout, c.poll)
		fmt.Printf("bound: failover %s = failure_threshold × interval + timeout + 100ms; failback %s = success_threshold × interval + timeout + 100ms\n\n", down, up)
		ok = printTable(c, "mode", results, corednsLog) && ok
	}
	if len(compared) > 0 {
		fmt.Printf("\nWithout and with fast_interval %s, side by side (mode refused, interval %s, failure_threshold %d, success_threshold %d, timeouts %s)\n",
			c.fast, c.interval, c.failures, c.success, c.timeout)
		fmt.Printf("bound without: threshold × interval + timeout + 100ms; with: interval + (threshold − 1) × fast_interval + timeout + 100ms\n\n")
		ok = printTable(c, "fast_interval", compared, corednsLog) && ok
	}
	fmt.Printf("\nbackground load: %s\n", load)
	fmt.Printf("trials took %s\n", elapsed.Round(time.Second))
	for _, r := range append(slices.Clone(results), compared...) {
		for _, n := range r.notes {
			fmt.Println("note:", n)
		}
	}
	return ok
}

// printTable prints one row per result, first column first, and reports
// whether every trial was within its bounds, without a flap, and logged
// once each way.
func printTable(c config, first string, results []*result, corednsLog string) bool {
	rows := [][]string{{first, "trials", "failover_median_ms", "failover_worst_ms", "bound_ms", "within",
		"failback_median_ms", "failback_worst_ms", "bound_ms", "within", "flaps", "unfinished", "logged_down/up"}}
	ok := true
	for _, r := range results {
		fo, fb := stats(r.failover), stats(r.failback)
		down, up := bounds(c, r.fast)
		inFo := len(r.failover) > 0 && fo.worst <= down
		inFb := len(r.failback) > 0 && fb.worst <= up
		if !inFo || !inFb || r.flaps > 0 || r.unfinished > 0 {
			ok = false
		}
		// Every trial is one transition each way, logged once: more means the
		// check flapped between two polls of the client.
		logDown, logUp, reason := transitions(corednsLog, r.name)
		if r.unfinished == 0 && (logDown != c.trials || logUp != c.trials) {
			ok = false
			r.notes = append(r.notes, fmt.Sprintf("%s: CoreDNS logged %d transitions to unhealthy and %d to healthy, want %d each", r.name, logDown, logUp, c.trials))
		}
		r.notes = append(r.notes, fmt.Sprintf("%s: reason logged for the last transition to unhealthy: %s", r.name, reason))
		label := r.name
		if first == "fast_interval" {
			label = "none"
			if r.fast > 0 {
				label = r.fast.String()
			}
		}
		rows = append(rows, []string{label, strconv.Itoa(c.trials),
			fmt.Sprintf("%.1f", ms(fo.median)), fmt.Sprintf("%.1f", ms(fo.worst)), fmt.Sprintf("%.0f", ms(down)), report.Yes(inFo),
			fmt.Sprintf("%.1f", ms(fb.median)), fmt.Sprintf("%.1f", ms(fb.worst)), fmt.Sprintf("%.0f", ms(up)), report.Yes(inFb),
			strconv.Itoa(r.flaps), strconv.Itoa(r.unfinished), fmt.Sprintf("%d/%d", logDown, logUp)})
	}
	report.PrintTable(rows)
	return ok
}

type summary struct{ median, worst time.Duration }

func stats(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{median: m, worst: s[len(s)-1]}
}

// transitions counts CoreDNS's log lines for a check's transitions
// ("check NAME: healthy -> unhealthy (REASON)"), and returns the reason of
// the last one to unhealthy.
func transitions(out, check string) (down, up int, reason string) {
	prefix := "check " + check + ": "
	for _, l := range strings.Split(out, "\n") {
		_, rest, found := strings.Cut(l, prefix)
		if !found {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "healthy -> unhealthy"):
			down++
			reason = strings.TrimPrefix(rest, "healthy -> unhealthy ")
		case strings.HasPrefix(rest, "unhealthy -> healthy"):
			up++
		}
	}
	return down, up, reason
}

// errorLines returns CoreDNS's log lines that report an error or a panic.
func errorLines(out string) string {
	var bad []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "[ERROR]") || strings.Contains(l, "panic") {
			bad = append(bad, l)
		}
	}
	return strings.Join(bad, "\n")
}
