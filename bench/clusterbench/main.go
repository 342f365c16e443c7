// Command clusterbench measures what sharing health between replicas
// (the plugin's `cluster` block) saves and costs, with CoreDNS replicas (the
// binary given) and real nginx backends on loopback addresses.
//
//	clusterbench -coredns BIN -nginx BIN [-parts load,consistency,scale] [flags]
//
// Every replica serves the same DNS port on an address of its own
// (127.0.8X.N), with ready, prometheus and gossip there too: replicas share
// a check only when their server blocks have the same keys.
//
//   - load: one check, `observers 2`; the cluster grows through -sizes
//     (1, 3, 5, 7) and at each size the requests at the backend (nginx's
//     access log) are counted over -load-window intervals; the same with
//     as many replicas without a cluster block, which probe each on its own.
//   - consistency: -replicas (5) replicas, `observers 2`; -trials (20)
//     times the primary's nginx is stopped and started again, and one
//     client per replica, asking every -poll (5 ms), times when each replica
//     switches: the time to switch of each replica, the time until the
//     last, and the spread between the first and the last of a trial.
//     Any answer that goes back (a flap) or never switches is counted.
//   - scale: -scale-replicas (7) replicas with -checks (1,000) checks at
//     -scale-interval (10 s, the default interval) against -backends (4)
//     nginx, one record set each, with the default cluster (observers 3),
//     then the same replicas without a cluster: over -scale-window, the
//     probes per second at the backends, the gossip bytes per second of
//     each member (cluster_gossip_bytes_total, sent + received) and the CPU
//     of each member (utime + stime from /proc/PID/stat).
//
// The exit status is 1 when an answer was wrong, a trial flapped or did not
// finish, or a replica logged an error.
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthfailover/healthfailover/internal/report"
)

type config struct {
	coredns, nginx string
	parts          []string
	work           string

	sizes      []int
	observers  int
	loadEvery  time.Duration
	loadWindow int

	replicas  int
	trials    int
	interval  time.Duration
	threshold int
	poll      time.Duration
	giveUp    time.Duration

	scaleReplicas int
	checks        int
	backends      int
	scaleEvery    time.Duration
	scaleWindow   time.Duration
}

var allParts = []string{"load", "consistency", "scale"}

func main() {
	var c config
	var parts, sizes string
	flag.StringVar(&c.coredns, "coredns", "", "CoreDNS binary built with healthfailover (required)")
	flag.StringVar(&c.nginx, "nginx", "nginx", "nginx binary, for the backends")
	flag.StringVar(&parts, "parts", strings.Join(allParts, ","), "what to measure: "+strings.Join(allParts, ", "))
	flag.StringVar(&sizes, "sizes", "1,3,5,7", "load: cluster sizes, growing")
	flag.IntVar(&c.observers, "observers", 2, "load and consistency: observers of each check")
	flag.DurationVar(&c.loadEvery, "load-interval", time.Second, "load: check interval")
	flag.IntVar(&c.loadWindow, "load-window", 10, "load: intervals counted at each size")
	flag.IntVar(&c.replicas, "replicas", 5, "consistency: replicas")
	flag.IntVar(&c.trials, "trials", 20, "consistency: trials (stop and start of the primary)")
	flag.DurationVar(&c.interval, "interval", 500*time.Millisecond, "consistency: check interval")
	flag.IntVar(&c.threshold, "threshold", 2, "consistency: failure_threshold (and success_threshold)")
	flag.DurationVar(&c.poll, "poll", 5*time.Millisecond, "consistency: how often each client asks its replica")
	flag.DurationVar(&c.giveUp, "give-up", 15*time.Second, "consistency: a switch not seen within this fails the trial")
	flag.IntVar(&c.scaleReplicas, "scale-replicas", 7, "scale: replicas")
	flag.IntVar(&c.checks, "checks", 1000, "scale: checks (one record set each)")
	flag.IntVar(&c.backends, "backends", 4, "scale: nginx backends the checks share")
	flag.DurationVar(&c.scaleEvery, "scale-interval", 10*time.Second, "scale: check interval")
	flag.DurationVar(&c.scaleWindow, "scale-window", time.Minute, "scale: measured window")
	flag.StringVar(&c.work, "work", "", "directory for Corefiles and logs (default: a temporary one, removed)")
	flag.Parse()
	c.parts = strings.Split(parts, ",")
	for _, p := range c.parts {
		if !slices.Contains(allParts, p) {
			log.Fatalf("clusterbench: unknown part %q (want %s)", p, strings.Join(allParts, ", "))
		}
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 50 || (len(c.sizes) > 0 && n <= c.sizes[len(c.sizes)-1]) {
			log.Fatalf("clusterbench: -sizes: want growing numbers from 1 to 50, got %q", sizes)
		}
		c.sizes = append(c.sizes, n)
	}
	if c.coredns == "" || c.trials < 1 || c.replicas < 2 || c.checks < 2 || c.backends < 1 {
		log.Fatal("clusterbench: need -coredns, -trials ≥ 1, -replicas ≥ 2, -checks ≥ 2, -backends ≥ 1")
	}
	temporary := c.work == ""
	if temporary {
		dir, err := os.MkdirTemp("", "clusterbench")
		if err != nil {
			log.Fatal(err)
		}
		c.work = dir
	}
	ok := run(c)
	if temporary {
		os.RemoveAll(c.work)
	}
	if !ok {
		os.Exit(1)
	}
}

// run measures the parts in turn; false when one failed.
func run(c config) bool {
	ok := true
	for _, p := range c.parts {
		var err error
		var good bool
		switch p {
		case "load":
			good, err = measureLoad(c)
		case "consistency":
			good, err = measureConsistency(c)
		case "scale":
			good, err = measureScale(c)
		}
		if err != nil {
			fmt.Printf("FAIL: %s: %v\n", p, err)
			good = false
		}
		ok = ok && good
	}
	return ok
}

// measureLoad counts the probes at the backend by cluster size, with and
// without a cluster.
func measureLoad(c config) (bool, error) {
	backendIP, secondary := "127.0.81.100", "127.0.81.101"
	port, err := freePort(backendIP)
	if err != nil {
		return false, err
	}
	backend, err := startNginx(c.nginx, c.work, backendIP, port)
	if err != nil {
		return false, err
	}
	defer backend.stop()
	body := fmt.Sprintf(`        check east http://%s/health {
            interval %s
            failure_threshold 2
        }
        record www.bench.test A {
            primary %s check east
            secondary %s
        }`, backend.addr(), c.loadEvery, backendIP, secondary)

	largest := c.sizes[len(c.sizes)-1]
	perInterval := map[bool]map[int]float64{true: {}, false: {}}
	ok := true
	for _, clustered := range []bool{true, false} {
		prefix, opts := "127.0.82", []string{"observers " + strconv.Itoa(c.observers)}
		if !clustered {
			prefix, opts = "127.0.83", nil
		}
		g, err := newGroup(c.coredns, c.work, prefix, largest)
		if err != nil {
			return false, err
		}
		running := 0
		for _, n := range c.sizes {
			for ; running < n; running++ {
				if err := g.start(g.replicas[running], opts, body); err != nil {
					g.stopAll()
					return false, err
				}
			}
			if clustered {
				if err := g.waitMembers(g.replicas[:n], n, 30*time.Second); err != nil {
					g.stopAll()
					return false, err
				}
			}
			// Observers move when members join: two intervals for the
			// probes under way to land.
			time.Sleep(2 * c.loadEvery)
			before, err := backend.requests()
			if err != nil {
				return false, err
			}
			time.Sleep(time.Duration(c.loadWindow) * c.loadEvery)
			after, err := backend.requests()
			if err != nil {
				return false, err
			}
			perInterval[clustered][n] = float64(after-before) / float64(c.loadWindow)
			for _, r := range g.replicas[:n] {
				a, err := newAsker(r)
				if err != nil {
					return false, err
				}
				if got := a.answer("www.bench.test"); got != backendIP {
					fmt.Printf("FAIL: load, %d replicas (cluster %t): %s answers %q, want %s\n", n, clustered, r.name, got, backendIP)
					ok = false
				}
				a.close()
			}
		}
		if bad := g.errorLines(); len(bad) > 0 {
			fmt.Printf("FAIL: load: replicas logged errors:\n%s\n", strings.Join(bad, "\n"))
			ok = false
		}
		g.stopAll()
	}

	fmt.Printf("\nProbe load: one check (interval %s), requests at its nginx per interval (access log, %d intervals at each size), cluster with observers %d vs. the same replicas without a cluster\n\n",
		c.loadEvery, c.loadWindow, c.observers)
	rows := [][]string{{"replicas", "cluster_req/interval", "without_cluster_req/interval", "cluster/without"}}
	for _, n := range c.sizes {
		with, without := perInterval[true][n], perInterval[false][n]
		rows = append(rows, []string{strconv.Itoa(n), fmt.Sprintf("%.1f", with), fmt.Sprintf("%.1f", without), fmt.Sprintf("%.2f", with/max(without, 0.001))})
	}
	report.PrintTable(rows)
	return ok, nil
}

// measureConsistency stops and starts the primary -trials times and times
// each replica's switch.
func measureConsistency(c config) (bool, error) {
	primaryIP, secondary := "127.0.84.100", "127.0.84.101"
	port, err := freePort(primaryIP)
	if err != nil {
		return false, err
	}
	primary, err := startNginx(c.nginx, c.work, primaryIP, port)
	if err != nil {
		return false, err
	}
	defer primary.stop()
	body := fmt.Sprintf(`        check east http://%s/health {
            interval %s
            failure_threshold %d
            success_threshold %d
        }
        record www.bench.test A {
            primary %s check east
            secondary %s
        }`, primary.addr(), c.interval, c.threshold, c.threshold, primaryIP, secondary)
	g, err := newGroup(c.coredns, c.work, "127.0.85", c.replicas)
	if err != nil {
		return false, err
	}
	defer g.stopAll()
	for _, r := range g.replicas {
		if err := g.start(r, []string{"observers " + strconv.Itoa(c.observers)}, body); err != nil {
			return false, err
		}
	}
	if err := g.waitMembers(g.replicas, c.replicas, 30*time.Second); err != nil {
		return false, err
	}
	var askers []*asker
	for _, r := range g.replicas {
		a, err := newAsker(r)
		if err != nil {
			return false, err
		}
		defer a.close()
		askers = append(askers, a)
	}
	const name = "www.bench.test"
	if _, _, err := watch(askers, name, "", primaryIP, time.Now(), c.giveUp, c.poll); err != nil {
		return false, fmt.Errorf("the primary does not answer at the start: %v", err)
	}

	type direction struct {
		name             string
		each, last, gaps []time.Duration
		flaps, unfinish  int
	}
	over, back := &direction{name: "failover"}, &direction{name: "failback"}
	var notes []string
	// settle waits an interval and a random part of one, so that the flips
	// land at every phase of the probes, and counts answers that move.
	settle := func(d *direction, want string) {
		until := time.Now().Add(c.interval + rand.N(c.interval))
		for time.Now().Before(until) {
			for i, a := range askers {
				if got := a.answer(name); got != want && !strings.HasPrefix(got, "error") {
					d.flaps++
					notes = append(notes, fmt.Sprintf("%s: %s answered %q while settled on %s", d.name, g.replicas[i].name, got, want))
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	trial := func(d *direction, from, to string, flip func() error) {
		if err := flip(); err != nil {
			notes = append(notes, err.Error())
		}
		took, flaps, err := watch(askers, name, from, to, time.Now(), c.giveUp, c.poll)
		d.flaps += flaps
		if err != nil {
			d.unfinish++
			notes = append(notes, fmt.Sprintf("%s: %v", d.name, err))
			return
		}
		d.each = append(d.each, took...)
		first, last := slices.Min(took), slices.Max(took)
		d.last = append(d.last, last)
		d.gaps = append(d.gaps, last-first)
	}
	started := time.Now()
	for range c.trials {
		settle(back, primaryIP)
		trial(over, primaryIP, secondary, func() error { primary.stop(); return nil })
		settle(over, secondary)
		trial(back, secondary, primaryIP, primary.start)
	}
	elapsed := time.Since(started)

	fmt.Printf("\nConsistency: %d replicas, observers %d, interval %s, failure_threshold and success_threshold %d; %d trials of stopping and starting the primary's nginx; one client per replica asking every %s\n\n",
		c.replicas, c.observers, c.interval, c.threshold, c.trials, c.poll)
	rows := [][]string{{"direction", "switch_median_ms", "switch_worst_ms", "all_switched_median_ms", "all_switched_worst_ms", "spread_median_ms", "spread_worst_ms", "flaps", "unfinished"}}
	ok := true
	for _, d := range []*direction{over, back} {
		rows = append(rows, []string{d.name, ms(median(d.each)), ms(slices.Max(append(d.each, 0))), ms(median(d.last)), ms(slices.Max(append(d.last, 0))),
			ms(median(d.gaps)), ms(slices.Max(append(d.gaps, 0))), strconv.Itoa(d.flaps), strconv.Itoa(d.unfinish)})
		ok = ok && d.flaps == 0 && d.unfinish == 0
	}
	report.PrintTable(rows)
	fmt.Printf("\nswitch: from the flip (nginx exited, or accepting again) to a replica's first answer with the other address, every replica of every trial; all switched: until the last replica of a trial; spread: last minus first replica of a trial. Trials took %s.\n",
		elapsed.Round(time.Second))
	for _, n := range notes {
		fmt.Println("note:", n)
	}
	if bad := g.errorLines(); len(bad) > 0 {
		fmt.Printf("FAIL: consistency: replicas logged errors:\n%s\n", strings.Join(bad, "\n"))
		ok = false
	}
	return ok, nil
}

// watch has one client per replica ask every poll until it answers to, and
// returns how long each took from since; an answer of from after to is a
// flap. With from empty, only to is awaited.
func watch(askers []*asker, name, from, to string, since time.Time, giveUp, poll time.Duration) ([]time.Duration, int, error) {
	took := make([]time.Duration, len(askers))
	var remaining atomic.Int64
	remaining.Store(int64(len(askers)))
	var flaps atomic.Int64
	var odd sync.Map
	var wg sync.WaitGroup
	for i, a := range askers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switched := false
			for remaining.Load() > 0 && time.Since(since) < giveUp {
				got := a.answer(name)
				at := time.Now()
				switch {
				case got == to && !switched:
					took[i] = at.Sub(since)
					switched = true
					remaining.Add(-1)
				case got == from && switched:
					flaps.Add(1)
				case got != from && got != to && !strings.HasPrefix(got, "error"):
					odd.Store(i, got)
				}
				time.Sleep(poll)
			}
		}()
	}
	wg.Wait()
	var err error
	if n := remaining.Load(); n > 0 {
		err = fmt.Errorf("%d of %d replicas did not answer %s within %s", n, len(askers), to, giveUp)
	}
	odd.Range(func(k, v any) bool {
		err = fmt.Errorf("replica %d answered %q, neither %q nor %q", k.(int)+1, v, from, to)
		flaps.Add(1)
		return false
	})
	return took, int(flaps.Load()), err
}

// measureScale runs many checks on a cluster, then on the same replicas
// without one.
func measureScale(c config) (bool, error) {
	var backends []*nginx
	for i := range c.backends {
		ip := fmt.Sprintf("127.0.86.%d", 101+i)
		port, err := freePort(ip)
		if err != nil {
			return false, err
		}
		b, err := startNginx(c.nginx, c.work, ip, port)
		if err != nil {
			return false, err
		}
		defer b.stop()
		backends = append(backends, b)
	}
	closedPort, err := freePort("127.0.86.99")
	if err != nil {
		return false, err
	}
	// c0 points where nothing listens: its record answers the secondary.
	var body strings.Builder
	for k := range c.checks {
		target := fmt.Sprintf("http://127.0.86.99:%d/c0", closedPort)
		if k > 0 {
			target = fmt.Sprintf("http://%s/c%d", backends[k%len(backends)].addr(), k)
		}
		fmt.Fprintf(&body, "        check c%d %s {\n            interval %s\n        }\n", k, target, c.scaleEvery)
	}
	for k := range c.checks {
		fmt.Fprintf(&body, "        record h%d.bench.test A {\n            primary 127.1.%d.%d check c%d\n            secondary 127.2.%d.%d\n        }\n",
			k, k/250, k%250+1, k, k/250, k%250+1)
	}
	want := func(k int) string {
		if k == 0 {
			return fmt.Sprintf("127.2.%d.%d", k/250, k%250+1)
		}
		return fmt.Sprintf("127.1.%d.%d", k/250, k%250+1)
	}
	picks := []int{0, 1, 2, c.checks / 2, c.checks - 1}

	type measured struct {
		label                  string
		probesPerSecond        float64
		gossip, cpu, ownProbes []float64 // per member, per second
		ready                  time.Duration
	}
	var results []measured
	ok := true
	for _, clustered := range []bool{true, false} {
		prefix, opts, label := "127.0.87", []string{}, "cluster (observers 3, the default)"
		if !clustered {
			prefix, opts, label = "127.0.88", nil, "no cluster"
		}
		g, err := newGroup(c.coredns, c.work, prefix, c.scaleReplicas)
		if err != nil {
			return false, err
		}
		m := measured{label: label}
		startAt := time.Now()
		for _, r := range g.replicas {
			if err := g.start(r, opts, body.String()); err != nil {
				g.stopAll()
				return false, err
			}
		}
		m.ready = time.Since(startAt) / time.Duration(len(g.replicas))
		if clustered {
			if err := g.waitMembers(g.replicas, len(g.replicas), time.Minute); err != nil {
				g.stopAll()
				return false, err
			}
		}
		// The first probes of every check come at once; then the checks'
		// jitter spreads them. One interval, and the views have settled.
		time.Sleep(c.scaleEvery + 2*time.Second)

		requests := func() (int, error) {
			sum := 0
			for _, b := range backends {
				n, err := b.requests()
				if err != nil {
					return 0, err
				}
				sum += n
			}
			return sum, nil
		}
		type sample struct {
			ticks         int64
			bytes, probes float64
		}
		read := func() ([]sample, error) {
			var out []sample
			for _, r := range g.replicas {
				ticks, err := r.cpuTicks()
				if err != nil {
					return nil, err
				}
				var bytes float64
				if clustered {
					if bytes, err = r.Metric("coredns_healthfailover_cluster_gossip_bytes_total"); err != nil {
						return nil, err
					}
				}
				probes, err := r.Metric("coredns_healthfailover_probes_total")
				if err != nil {
					return nil, err
				}
				out = append(out, sample{ticks, bytes, probes})
			}
			return out, nil
		}
		req0, err := requests()
		if err != nil {
			return false, err
		}
		s0, err := read()
		if err != nil {
			return false, err
		}
		t0 := time.Now()
		time.Sleep(c.scaleWindow)
		req1, err := requests()
		if err != nil {
			return false, err
		}
		s1, err := read()
		if err != nil {
			return false, err
		}
		secs := time.Since(t0).Seconds()
		m.probesPerSecond = float64(req1-req0) / secs
		for i := range s1 {
			m.cpu = append(m.cpu, float64(s1[i].ticks-s0[i].ticks)/clockTick/secs)
			m.gossip = append(m.gossip, (s1[i].bytes-s0[i].bytes)/secs)
			m.ownProbes = append(m.ownProbes, (s1[i].probes-s0[i].probes)/secs)
		}
		for _, r := range g.replicas {
			a, err := newAsker(r)
			if err != nil {
				return false, err
			}
			for _, k := range picks {
				if got := a.answer(fmt.Sprintf("h%d.bench.test", k)); got != want(k) {
					fmt.Printf("FAIL: scale (%s): %s answers h%d %q, want %s\n", label, r.name, k, got, want(k))
					ok = false
				}
			}
			a.close()
		}
		if bad := g.errorLines(); len(bad) > 0 {
			fmt.Printf("FAIL: scale: replicas logged errors:\n%s\n", strings.Join(bad[:min(len(bad), 20)], "\n"))
			ok = false
		}
		g.stopAll()
		results = append(results, m)
	}

	fmt.Printf("\nScale: %d replicas, %d checks at %s (one record set each) against %d nginx; measured over %s after an interval of settling\n\n",
		c.scaleReplicas, c.checks, c.scaleEvery, c.backends, c.scaleWindow)
	rows := [][]string{{"mode", "probes/s_at_backends", "probes/s_per_member(median,max)", "gossip_B/s_per_member(median,max)", "CPU_cores_per_member(median,max)", "start_to_ready_per_member_s"}}
	for _, m := range results {
		gossip := "-"
		if m.label != "no cluster" {
			gossip = fmt.Sprintf("%.0f, %.0f", median(m.gossip), slices.Max(m.gossip))
		}
		rows = append(rows, []string{m.label, fmt.Sprintf("%.0f", m.probesPerSecond),
			fmt.Sprintf("%.1f, %.1f", median(m.ownProbes), slices.Max(m.ownProbes)), gossip,
			fmt.Sprintf("%.3f, %.3f", median(m.cpu), slices.Max(m.cpu)), fmt.Sprintf("%.1f", m.ready.Seconds())})
	}
	report.PrintTable(rows)
	if len(results) == 2 {
		saved := results[1].probesPerSecond - results[0].probesPerSecond
		fmt.Printf("\nthe cluster saves %.0f probes/s (%.0f %% of those without it) for %.1f KB/s of gossip per member (sent + received)\n",
			saved, 100*saved/max(results[1].probesPerSecond, 1), median(results[0].gossip)/1000)
	}
	return ok, nil
}

func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
