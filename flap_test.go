package healthfailover

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// flapMember and flapSet describe the record sets of the load test once:
// the Corefile is written from them, and so is what each answer must be.
type flapMember struct {
	tier  int
	value string // an address, or "" for an alias
	alias string
	check string
}

type flapSet struct {
	name      string
	members   []flapMember
	onAllDown string // "" for the default, fail open
}

var flapSets = []flapSet{
	// Active-active-passive, with an unchecked last resort in tier 3.
	{name: "mixed.example.org.", members: []flapMember{
		{tier: 1, value: "10.0.1.1", check: "p1"},
		{tier: 1, value: "10.0.1.2", check: "p2"},
		{tier: 2, value: "10.0.1.3", check: "s1"},
		{tier: 3, value: "10.0.1.4"},
	}},
	// Active-passive that fails open when both are down.
	{name: "pair.example.org.", members: []flapMember{
		{tier: 1, value: "10.0.2.1", check: "q1"},
		{tier: 2, value: "10.0.2.2", check: "q2"},
	}},
	// An alias of pair as primary; a check shared with mixed.
	{name: "alias.example.org.", members: []flapMember{
		{tier: 1, alias: "pair.example.org."},
		{tier: 2, value: "10.0.3.1", check: "p1"},
		{tier: 2, value: "10.0.3.2", check: "s2"},
	}},
	// SERVFAIL when every member is down.
	{name: "strict.example.org.", members: []flapMember{
		{tier: 1, value: "10.0.4.1", check: "s2"},
		{tier: 2, value: "10.0.4.2", check: "q2"},
	}, onAllDown: "servfail"},
}

func flapSetByName(name string) flapSet {
	for _, s := range flapSets {
		if s.name == name {
			return s
		}
	}
	panic("no record set " + name)
}

// flapExpected is what a set must answer for a given health of the checks,
// from the README's rules, independently of records.go: the lowest tier
// with a healthy member answers with all its healthy members; an alias is
// healthy while its target has a healthy member; with none healthy the
// first tier answers as if healthy, or SERVFAIL.
func flapExpected(s flapSet, healthy map[string]bool) (tier int, addrs []string, servfail bool) {
	memberHealthy := func(m flapMember) bool {
		if m.check != "" && !healthy[m.check] {
			return false
		}
		if m.alias != "" {
			t, _, _ := flapExpected(flapSetByName(m.alias), healthy)
			return t > 0
		}
		return true
	}
	for _, m := range s.members {
		if memberHealthy(m) && (tier == 0 || m.tier < tier) {
			tier = m.tier
		}
	}
	serving := tier
	if tier == 0 {
		if s.onAllDown == "servfail" {
			return 0, nil, true
		}
		serving = s.members[0].tier
	}
	for _, m := range s.members {
		if m.tier != serving || (tier != 0 && !memberHealthy(m)) {
			continue
		}
		if m.alias != "" {
			_, nested, _ := flapExpected(flapSetByName(m.alias), healthy)
			addrs = append(addrs, nested...)
		} else {
			addrs = append(addrs, m.value)
		}
	}
	slices.Sort(addrs)
	return tier, addrs, false
}

// flapChecks lists the checks a set's answer depends on, through aliases.
func flapChecks(s flapSet) []string {
	var out []string
	for _, m := range s.members {
		if m.check != "" {
			out = append(out, m.check)
		}
		if m.alias != "" {
			out = append(out, flapChecks(flapSetByName(m.alias))...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestFailoverInvariantUnderFlappingAndLoad flips backends up and down every
// 150-300 ms under checks with thresholds of 1, while many goroutines query
// over UDP, and checks every answer against the health of the checks.
//
// Soundness. A check's health changes (checker: State.Healthy and
// State.Transitions, together under its lock) a moment before the record
// table swaps in the new answer (a subscriber of the transition). So the
// test keeps its own count of transitions delivered, from a subscriber
// registered after the plugin's, hence called once the table has swapped.
// A query is judged when, for every check its set depends on, nothing was
// decided between the health read before it and the health read after it.
// If every transition decided had been delivered before the query, the
// answer was built from exactly that health and must be exactly what it
// dictates; if one transition of some checks was still being delivered,
// the answer must fit that health with each of those checks either before
// or after its transition. Queries during which a transition was decided
// are counted, not judged: any mix of before and after is then right.
func TestFailoverInvariantUnderFlappingAndLoad(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		flipMin  = 150 * time.Millisecond
		flipMax  = 300 * time.Millisecond
		queriers = 8
		// The queries run in rounds until enough answers were judged (see
		// enough below): however slow the machine, the test ends once it
		// has proved something, and fails only if that takes maxRounds.
		round     = time.Second
		maxRounds = 60
		maxQuery  = 200_000 // per querier and round: bounds the loop whatever the speed
		queryWait = 5 * time.Second
	)
	// Every transition logs a line; hundreds of them would only be noise.
	stdlog.SetOutput(io.Discard)
	t.Cleanup(func() { stdlog.SetOutput(os.Stderr) })

	checkNames := []string{"p1", "p2", "s1", "s2", "q1", "q2"}
	backends := map[string]*backend{}
	var block strings.Builder
	block.WriteString("healthfailover example.org {\n")
	for _, name := range checkNames {
		b := newBackend(t, name)
		backends[name] = b
		fmt.Fprintf(&block, "\tcheck %s %s/ {\n\t\tinterval %s\n\t\tfailure_threshold 1\n\t}\n", name, b.URL, interval)
	}
	for _, s := range flapSets {
		fmt.Fprintf(&block, "\trecord %s A {\n", s.name)
		for _, m := range s.members {
			value := m.value
			if m.alias != "" {
				value = "alias " + m.alias
			}
			fmt.Fprintf(&block, "\t\ttier %d %s", m.tier, value)
			if m.check != "" {
				fmt.Fprintf(&block, " check %s", m.check)
			}
			block.WriteString("\n")
		}
		if s.onAllDown != "" {
			fmt.Fprintf(&block, "\t\ton_all_down %s\n", s.onAllDown)
		}
		block.WriteString("\t}\n")
	}
	block.WriteString("}\n")
	cfg, err := parseString(t, block.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, block.String())
	}
	h, err := newHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	delivered := map[string]*atomic.Uint64{}
	for _, name := range checkNames {
		delivered[name] = &atomic.Uint64{}
	}
	h.checks.Subscribe(func(tr checker.Transition) { delivered[tr.Check].Add(1) })
	h.checks.Start(nil)
	t.Cleanup(h.checks.Stop)
	udp := serveUDP(t, h)

	// Flip every backend at its own random pace until the queries end.
	stop := make(chan struct{})
	var flippers sync.WaitGroup
	for _, b := range backends {
		flippers.Add(1)
		go func() {
			defer flippers.Done()
			up := true
			for range int(maxRounds * round / flipMin) {
				timer := time.NewTimer(flipMin + rand.N(flipMax-flipMin))
				select {
				case <-stop:
					timer.Stop()
					return
				case <-timer.C:
				}
				up = !up
				b.setUp(up)
			}
		}()
	}
	defer func() {
		close(stop)
		flippers.Wait()
	}()

	type tally struct {
		judged, inTransition, unjudged int
		pending                        int                    // judged with a transition undelivered
		pendingStale                   int                    // pending, and the answer fitted only the previous health
		wrong                          int                    // judged and wrong
		tiers                          map[string]map[int]int // set -> expected tier (0: all down) -> judged answers
		violations                     []string
		errors                         []string
	}
	tallies := make([]tally, queriers)
	for q := range tallies {
		tallies[q].tiers = map[string]map[int]int{}
	}
	// query runs querier q for one round, from start, adding to its tally.
	query := func(tl *tally, q int, start time.Time) {
		conn, err := (&dns.Client{Net: "udp", Timeout: queryWait}).Dial(udp)
		if err != nil {
			tl.errors = append(tl.errors, err.Error())
			return
		}
		defer conn.Close()
		client := &dns.Client{Net: "udp", Timeout: queryWait}
		for i := 0; i < maxQuery && time.Since(start) < round; i++ {
			set := flapSets[(q+i)%len(flapSets)]
			checks := flapChecks(set)
			// Before: decided, then delivered (in this order, see above).
			decided := make([]uint64, len(checks))
			undelivered := map[string]uint64{}
			healthy := map[string]bool{}
			for j, c := range checks {
				st, _ := h.checks.State(c)
				decided[j], healthy[c] = st.Transitions, st.Healthy
				if n := st.Transitions - delivered[c].Load(); n > 0 {
					undelivered[c] = n
				}
			}
			m := new(dns.Msg)
			m.SetQuestion(set.name, dns.TypeA)
			r, _, err := client.ExchangeWithConn(m, conn)
			if err != nil {
				if len(tl.errors) < 5 {
					tl.errors = append(tl.errors, fmt.Sprintf("%s: %v", set.name, err))
				}
				continue
			}
			quiet := true
			for j, c := range checks {
				st, _ := h.checks.State(c)
				quiet = quiet && st.Transitions == decided[j]
			}
			if !quiet {
				tl.inTransition++
				continue
			}
			tier, want, servfail := flapExpected(set, healthy)
			wantRcode := dns.RcodeSuccess
			if servfail {
				wantRcode = dns.RcodeServerFailure
			}
			got := flapAddrs(r)
			wrong := r.Rcode != wantRcode || !slices.Equal(got, want)
			if len(undelivered) > 0 {
				// The health before and after agree, yet the table may
				// still hold an answer built before the transition of
				// a check was delivered: each such check may count with
				// its health before the transition or after it.
				tl.pending++
				if wrong {
					fits, judged := flapFitsPrevious(set, healthy, undelivered, r.Rcode, got)
					if !judged {
						tl.unjudged++
						continue
					}
					if fits {
						tl.pendingStale++
						wrong = false
					}
				}
			}
			tl.judged++
			if tl.tiers[set.name] == nil {
				tl.tiers[set.name] = map[int]int{}
			}
			tl.tiers[set.name][tier]++
			if wrong {
				tl.wrong++
				if len(tl.violations) < 10 {
					tl.violations = append(tl.violations, fmt.Sprintf("%s with health %v (%d transitions undelivered): %s %v, want %s %v",
						set.name, healthy, len(undelivered), dns.RcodeToString[r.Rcode], got, dns.RcodeToString[wantRcode], want))
				}
			}
		}
	}

	// queryRound runs every querier for one round; each adds to its tally.
	queryRound := func() {
		var wg sync.WaitGroup
		start := time.Now()
		for q := range queriers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				query(&tallies[q], q, start)
			}()
		}
		wg.Wait()
	}

	// enough: the test proves something only if it judged many answers,
	// the backends flapped, and each set was seen both on its primaries and
	// failed over.
	var total tally
	var transitions uint64
	sum := func() {
		total = tally{tiers: map[string]map[int]int{}}
		for _, tl := range tallies {
			total.judged += tl.judged
			total.inTransition += tl.inTransition
			total.pending += tl.pending
			total.unjudged += tl.unjudged
			total.pendingStale += tl.pendingStale
			total.wrong += tl.wrong
			total.violations = append(total.violations, tl.violations...)
			total.errors = append(total.errors, tl.errors...)
			for set, byTier := range tl.tiers {
				if total.tiers[set] == nil {
					total.tiers[set] = map[int]int{}
				}
				for tier, n := range byTier {
					total.tiers[set][tier] += n
				}
			}
		}
		transitions = 0
		for _, st := range h.checks.Snapshot() {
			transitions += st.Transitions
		}
	}
	enough := func() bool {
		if total.judged < 1000 || transitions < 50 {
			return false
		}
		for _, s := range flapSets {
			byTier := total.tiers[s.name]
			if byTier[1] < 10 || byTier[1] == total.judged || len(byTier) < 2 {
				return false
			}
		}
		return true
	}
	start := time.Now()
	rounds := 0
	for rounds < maxRounds {
		queryRound()
		rounds++
		sum()
		if enough() || len(total.errors) > 0 || total.wrong > 0 {
			break
		}
	}
	elapsed := time.Since(start)

	all := total.judged + total.inTransition + total.unjudged
	t.Logf("%d queries in %s (%d rounds) by %d goroutines (%.0f/s), %d transitions: %d judged (%d with a transition undelivered, %d of them fitting only the health before it), %d during a transition, %d unjudged",
		all, elapsed.Round(time.Millisecond), rounds, queriers, float64(all)/elapsed.Seconds(), transitions,
		total.judged, total.pending, total.pendingStale, total.inTransition, total.unjudged)
	for _, s := range flapSets {
		t.Logf("  %-20s judged answers by expected tier (0 = all down): %v", s.name, total.tiers[s.name])
	}
	for _, e := range total.errors {
		t.Errorf("query error: %s", e)
	}
	if total.wrong > 0 {
		t.Errorf("%d of %d judged answers were wrong, for example:", total.wrong, total.judged)
	}
	for _, v := range total.violations[:min(len(total.violations), 20)] {
		t.Errorf("wrong answer: %s", v)
	}

	if !enough() {
		t.Errorf("after %d rounds of %s: %d judged answers (of %d), %d transitions, judged answers by set and tier %v: too little to prove anything",
			rounds, round, total.judged, all, transitions, total.tiers)
	}
}

func flapAddrs(r *dns.Msg) []string {
	var got []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			got = append(got, a.A.String())
		}
	}
	slices.Sort(got)
	return got
}

// flapFitsPrevious tells whether an answer fits the health in which some
// of the checks with an undelivered transition still have their health
// from before it. It judges only single undelivered transitions: with two
// or more, the health before them is not known.
func flapFitsPrevious(set flapSet, healthy map[string]bool, undelivered map[string]uint64, rcode int, got []string) (fits, judged bool) {
	var pending []string
	for c, n := range undelivered {
		if n > 1 {
			return false, false
		}
		pending = append(pending, c)
	}
	for mask := range 1 << len(pending) {
		h := maps.Clone(healthy)
		for i, c := range pending {
			if mask&(1<<i) != 0 {
				h[c] = !h[c]
			}
		}
		_, want, servfail := flapExpected(set, h)
		wantRcode := dns.RcodeSuccess
		if servfail {
			wantRcode = dns.RcodeServerFailure
		}
		if rcode == wantRcode && slices.Equal(got, want) {
			return true, true
		}
	}
	return false, true
}

// serveUDP serves a handler over UDP on loopback, as CoreDNS's server does
// (it writes the reply of an rcode the handler did not write).
func serveUDP(t *testing.T, h plugin.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			rcode, _ := h.ServeDNS(context.Background(), w, r)
			if !plugin.ClientWrite(rcode) {
				m := new(dns.Msg)
				m.SetRcode(r, rcode)
				w.WriteMsg(m)
			}
		}),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ActivateAndServe()
	}()
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the UDP server did not start")
	}
	return pc.LocalAddr().String()
}
