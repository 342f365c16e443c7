// Command hostile measures what hostile backends cost healthfailover: it
// runs CoreDNS in this process with one check against each kind of broken or
// hostile backend (a connect that times out, a server that never answers,
// one that trickles, an endless body, a huge header, a stalled or a non-TLS
// handshake, a reset mid-response) beside a healthy check, queries DNS at a
// steady pace and samples the status endpoint for a while, and prints:
//
//   - per hostile check, the probe durations seen against its timeouts;
//
//   - the healthy check's probes against one per interval;
//
//   - DNS latency percentiles and the answers that were wrong;
//
//   - the heap in use before, after and at its peak (the endless body and
//     the huge header must be read up to fixed limits, never whole).
//
//     hostile [-duration 10s] [-slack 250ms]
//
// The exit status is 1 when a check ended up with the wrong reason, a probe
// outlasted its timeouts by more than -slack, the healthy check probed less
// than 70 % as often as its interval asks, an answer was wrong or slow
// beyond the check timeouts, or the heap grew by more than 4 MiB.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"github.com/healthfailover/healthfailover/internal/report"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	_ "github.com/healthfailover/healthfailover" // registers the plugin
	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/healthfailover/healthfailover/internal/hostile"
	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/miekg/dns"
)

const (
	queryEvery  = 20 * time.Millisecond
	sampleEvery = 50 * time.Millisecond
	fastQuery   = 50 * time.Millisecond
)

// hostileCase is one case of the scenario with the most one of its probes
// may take: its timeouts.
type hostileCase struct {
	hostile.Case
	bound time.Duration
}

func main() {
	duration := flag.Duration("duration", 10*time.Second, "how long to measure")
	slack := flag.Duration("slack", 250*time.Millisecond, "how late a probe's timer may fire on a busy machine")
	bounds := flag.Bool("bounds", true, "fail on the time and memory bounds too, not only on wrong results")
	flag.Parse()
	log.SetFlags(0)
	ok, err := run(*duration, *slack, *bounds)
	if err != nil {
		log.Fatalf("hostile: %v", err)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(window, slack time.Duration, bounds bool) (bool, error) {
	var closers []func()
	defer func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}()
	tcp := func(handle func(net.Conn, <-chan struct{})) (string, error) {
		s, err := fakebackend.StartTCP("", handle)
		if err != nil {
			return "", err
		}
		closers = append(closers, s.Close)
		return s.Addr(), nil
	}
	never, err := fakebackend.StartNeverAccepting()
	if err != nil {
		return false, err
	}
	closers = append(closers, never.Close)
	both := hostile.ConnectTimeout + hostile.ResponseTimeout
	cases := []hostileCase{{hostile.NeverAccepts(never.Addr()), hostile.ConnectTimeout}}
	for _, k := range hostile.Kinds {
		addr, err := tcp(k.Handle)
		if err != nil {
			return false, err
		}
		cases = append(cases, hostileCase{k.At(addr), both})
	}
	healthy, err := fakebackend.StartHTTP(fakebackend.Options{Body: "OK"})
	if err != nil {
		return false, err
	}
	closers = append(closers, healthy.Close)
	statusAddr, err := fakebackend.ClosedPort("")
	if err != nil {
		return false, err
	}

	// CoreDNS's log would only repeat the transitions the table shows.
	log.SetOutput(io.Discard)
	inst, err := inprocess.Start(hostile.Corefile(hostileCases(cases), healthy.URL(), statusAddr))
	log.SetOutput(os.Stderr)
	if err != nil {
		return false, err
	}
	closers = append(closers, func() { inprocess.Stop(inst) })
	udp, _ := inprocess.Addrs(inst, 0)

	// Every hostile check fails its first probe, which decides its health
	// directly: wait for all of them, then measure from a settled state.
	var doc statusDoc
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(sampleEvery) {
		if doc, err = readStatus(statusAddr); err == nil && allDown(doc, cases) {
			break
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("the hostile checks were not all down within 30s (%v)", err)
		}
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	startDoc := doc
	start := time.Now()

	type query struct {
		took  time.Duration
		right bool
		err   error
	}
	queries := make(chan []query, 1)
	go func() {
		var out []query
		client := &dns.Client{Net: "udp", Timeout: time.Second}
		tick := time.NewTicker(queryEvery)
		defer tick.Stop()
		for time.Since(start) < window {
			m := new(dns.Msg)
			m.SetQuestion("healthy.example.org.", dns.TypeA)
			began := time.Now()
			r, _, err := client.Exchange(m, udp)
			q := query{took: time.Since(began), err: err}
			q.right = err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "127.0.0.1"
			out = append(out, q)
			<-tick.C
		}
		queries <- out
	}()

	// Meanwhile, every probe result the status endpoint shows.
	durations := map[string][]time.Duration{}
	wrongResults := map[string]int{}
	seen := map[string]map[time.Time]bool{}
	var peak uint64 // heap in use between collections: what a probe holds while it reads
	tick := time.NewTicker(sampleEvery)
	for time.Since(start) < window {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		if doc, err = readStatus(statusAddr); err != nil {
			return false, err
		}
		for _, c := range cases {
			st, _ := doc.check(c.Name)
			if st.Last == nil {
				continue
			}
			if seen[c.Name] == nil {
				seen[c.Name] = map[time.Time]bool{}
			}
			if seen[c.Name][st.Last.At] {
				continue
			}
			seen[c.Name][st.Last.At] = true
			durations[c.Name] = append(durations[c.Name], time.Duration(st.Last.Phases["total"])*time.Microsecond)
			if st.Healthy || st.Last.Reason != c.Reason || !strings.Contains(st.Last.Message, c.Message) {
				wrongResults[c.Name]++
			}
		}
		<-tick.C
	}
	tick.Stop()
	qs := <-queries
	elapsed := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	ok := true
	fmt.Printf("Hostile backends, %s measured (checks: interval %s, connect_timeout %s, response_timeout %s, failure_threshold 1; slack %s)\n\n",
		elapsed.Round(time.Millisecond), hostile.Interval, hostile.ConnectTimeout, hostile.ResponseTimeout, slack)
	rows := [][]string{{"check", "probes", "results_seen", "median_ms", "worst_ms", "bound_ms", "within", "wrong_results", "last"}}
	for _, c := range cases {
		a, _ := startDoc.check(c.Name)
		b, _ := doc.check(c.Name)
		d := slices.Sorted(slices.Values(durations[c.Name]))
		var median, worst time.Duration
		if len(d) > 0 {
			median, worst = d[len(d)/2], d[len(d)-1]
		}
		within := worst <= c.bound+slack
		probes := b.Failures - a.Failures
		if wrongResults[c.Name] > 0 || probes < 1 || (bounds && (!within || probes < 3)) {
			ok = false
		}
		last := ""
		if b.Last != nil {
			last = b.Last.Reason
		}
		rows = append(rows, []string{c.Name, fmt.Sprint(probes), fmt.Sprint(len(d)), ms(median), ms(worst), ms(c.bound), report.Yes(within), fmt.Sprint(wrongResults[c.Name]), last})
	}
	report.PrintTable(rows)

	a, _ := startDoc.check("healthy")
	b, _ := doc.check("healthy")
	probes := (b.Successes + b.Failures) - (a.Successes + a.Failures)
	want := float64(elapsed) / float64(hostile.HealthyInterval)
	steady := float64(probes) >= 0.7*want-1 && b.Healthy && b.Transitions == 0
	ok = ok && b.Healthy && b.Transitions == 0 && probes > 0 && (steady || !bounds)
	fmt.Printf("\nhealthy check: %d probes (%.0f at one per %s), %d failures, %d transitions: %s\n", probes, want, hostile.HealthyInterval, b.Failures, b.Transitions, report.Yes(steady))

	var took []time.Duration
	var wrong, failed, slow int
	for _, q := range qs {
		switch {
		case q.err != nil:
			failed++
		case !q.right:
			wrong++
		}
		took = append(took, q.took)
		if q.took > fastQuery {
			slow++
		}
	}
	slices.Sort(took)
	if len(took) == 0 {
		return false, fmt.Errorf("no DNS query in %s", elapsed)
	}
	p50, p99, worst := took[len(took)/2], took[len(took)*99/100], took[len(took)-1]
	// A stall would show in every answer queued behind it: slower than a
	// probe's timeouts.
	dnsOK := wrong == 0 && failed == 0 && worst <= both
	ok = ok && wrong == 0 && failed == 0 && (dnsOK || !bounds)
	fmt.Printf("DNS: %d queries, %d wrong, %d failed, %d over %s; p50 %s, p99 %s, max %s (bound %s): %s\n",
		len(qs), wrong, failed, slow, fastQuery, p50, p99, worst, both, report.Yes(dnsOK))

	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	// Garbage between collections lets the heap double before the next
	// one; a probe that read an endless body whole would hold hundreds of
	// MiB (loopback moves GiB a second).
	memOK := growth <= 4<<20 && peak <= 2*before.HeapInuse+16<<20
	ok = ok && (memOK || !bounds)
	fmt.Printf("heap in use: %.1f MiB before, %.1f MiB after (%+.1f MiB; bound +4 MiB), peak %.1f MiB (bound %.1f MiB): %s\n",
		mib(before.HeapInuse), mib(after.HeapInuse), float64(growth)/(1<<20), mib(peak), mib(2*before.HeapInuse+16<<20), report.Yes(memOK))
	return ok, nil
}

// statusDoc is the part of the status endpoint's JSON read here.
type statusDoc struct {
	Checks []checkStatus `json:"checks"`
}

type checkStatus struct {
	Name        string      `json:"name"`
	Healthy     bool        `json:"healthy"`
	Successes   uint64      `json:"successes"`
	Failures    uint64      `json:"failures"`
	Transitions uint64      `json:"transitions"`
	Last        *lastResult `json:"last"`
}

type lastResult struct {
	Reason  string           `json:"reason"`
	Message string           `json:"message"`
	At      time.Time        `json:"at"`
	Phases  map[string]int64 `json:"phases_us"`
}

func (d statusDoc) check(name string) (checkStatus, bool) {
	for _, c := range d.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return checkStatus{}, false
}

func hostileCases(cases []hostileCase) []hostile.Case {
	out := make([]hostile.Case, len(cases))
	for i, c := range cases {
		out[i] = c.Case
	}
	return out
}

func allDown(doc statusDoc, cases []hostileCase) bool {
	for _, c := range cases {
		st, ok := doc.check(c.Name)
		if !ok || st.Healthy || st.Last == nil {
			return false
		}
	}
	return true
}

func readStatus(addr string) (statusDoc, error) {
	var doc statusDoc
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return doc, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return doc, fmt.Errorf("status endpoint: %s", resp.Status)
	}
	return doc, json.NewDecoder(resp.Body).Decode(&doc)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
