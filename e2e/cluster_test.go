package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The record set of the cluster tests: an nginx primary with a check, and a
// secondary without one (always healthy), by address.
func clusterRecord(name, primary, secondary string) string {
	return fmt.Sprintf(`        record %s A {
            primary %s check east
            secondary %s
        }
`, name, primary, secondary)
}

// TestClusterProbeLoad: with `observers 2`, a check is probed about twice
// an interval whatever the number of replicas, and once by a replica alone;
// counted where it costs, at the backend, from nginx's access log. The
// cluster grows from 1 to 3, 5 and 7 replicas; at each size the probes of
// a window of intervals are counted, and the replicas that made them
// (probes_total) must be the check's observers and no other. The rates go
// to bench/cluster.sh; here the count is held to the observers (plus a
// window's edge) and 7 replicas must not probe more than 3 do.
func TestClusterProbeLoad(t *testing.T) {
	requireE2E(t)
	const (
		observers = 2
		intervals = 8 // the window
		zone      = "example.org"
		name      = "www.example.org"
		prefix    = "127.0.71"
	)
	east := startPrimaryNginx(t, prefix)
	body := clusterCheck("east", east, "/health") + clusterRecord(name, east.ip, prefix+".101")
	rs := newReplicas(t, prefix, 7, zone, fmt.Sprintf("observers %d", observers), body)

	counts := map[int]int{}
	running := 0
	for _, n := range []int{1, 3, 5, 7} {
		for ; running < n; running++ {
			rs[running].start(t)
			rs[running].waitReady(t, 20*time.Second)
		}
		live := rs[:n]
		waitMembers(t, live, n, 20*time.Second)
		want := min(n, observers)
		var chosen []string
		waitFor(t, 10*time.Second, fmt.Sprintf("%d replicas agree on %d observers", n, want), func() (bool, string) {
			var lists []string
			for _, r := range live {
				st, err := r.CheckStatus(zone, "east")
				if err != nil {
					return false, err.Error()
				}
				chosen = st.Cluster.Observers
				lists = append(lists, r.name+"="+strings.Join(st.Cluster.Observers, ","))
				if len(st.Cluster.Observers) != want || !slices.Equal(st.Cluster.Observers, live[0].mustObservers(zone)) {
					return false, strings.Join(lists, " ")
				}
			}
			return true, ""
		})
		// Probes already under way when the membership changed land
		// before the window opens.
		time.Sleep(2 * clusterInterval)

		probes := func() []float64 {
			out := make([]float64, n)
			for i, r := range live {
				out[i] = r.metric("coredns_healthfailover_probes_total", `check="east"`)
			}
			return out
		}
		// The counts judge a cluster whose membership held: on a loaded
		// machine a member may be suspected for a moment, which moves
		// probing on purpose. Such a window is measured again.
		stable := func() bool {
			for _, r := range live {
				st, err := r.CheckStatus(zone, "east")
				if err != nil || r.metric("coredns_healthfailover_cluster_members") != float64(n) || !slices.Equal(st.Cluster.Observers, chosen) {
					return false
				}
			}
			return true
		}
		var got int
		var probesBefore, probesAfter []float64
		for attempt := 1; ; attempt++ {
			before := east.requests(t, "/health")
			probesBefore = probes()
			time.Sleep(intervals * clusterInterval)
			after := east.requests(t, "/health")
			probesAfter = probes()
			got = after - before
			if stable() || attempt == 3 {
				break
			}
			report(t, "%d replicas: membership or observers changed during window %d; measuring again", n, attempt)
			time.Sleep(2 * clusterInterval)
		}
		counts[n] = got
		report(t, "%d replicas, observers %d: %d requests at the backend in %d intervals (%.2f an interval)",
			n, observers, got, intervals, float64(got)/intervals)

		// Each observer probes once an interval: intervals or one more
		// in the window, by where its grid falls.
		if most := want * (intervals + 1); got > most {
			t.Errorf("%d replicas: %d requests at the backend in %d intervals, want at most %d (%d observers)", n, got, intervals, most, want)
		}
		if least := want * intervals / 2; got < least {
			t.Errorf("%d replicas: %d requests at the backend in %d intervals, want at least %d: the observers stopped probing", n, got, intervals, least)
		}
		for i, r := range live {
			made := probesAfter[i] - probesBefore[i]
			observer := slices.Contains(chosen, r.member)
			switch {
			case probesBefore[i] < 0 || probesAfter[i] < 0:
				t.Errorf("%d replicas: %s: /metrics unreadable", n, r.name)
			case observer && made == 0:
				t.Errorf("%d replicas: %s observes the check and made no probe in the window", n, r.name)
			case !observer && made > 0:
				t.Errorf("%d replicas: %s is no observer of the check (observers %v) and made %v probes in the window", n, r.name, chosen, made)
			}
		}
	}
	// A window's edge is at most one request per observer.
	if counts[7] > counts[3]+observers {
		t.Errorf("7 replicas made %d requests at the backend, 3 replicas %d: the probe load grows with the replicas", counts[7], counts[3])
	}
	// Every replica answers the primary all along.
	waitAnswers(t, rs, name, east.ip, 5*time.Second)
}

// mustObservers is the check east's observers as the replica sees them; nil
// when /status cannot be read.
func (r *replica) mustObservers(zone string) []string {
	st, err := r.CheckStatus(zone, "east")
	if err != nil {
		return nil
	}
	return st.Cluster.Observers
}

// watchSwitch polls every replica, one after the other, until each has
// answered name with to, and returns how long each took from since. An
// answer other than from and to, or from again on a replica that already
// answered to, fails the test: the replicas move once, together.
func watchSwitch(t *testing.T, rs []*replica, name, from, to string, since time.Time, within time.Duration) map[string]time.Duration {
	t.Helper()
	took := map[string]time.Duration{}
	deadline := since.Add(within)
	for len(took) < len(rs) {
		for _, r := range rs {
			a := r.answer(name)
			_, switched := took[r.name]
			switch {
			case a == to && !switched:
				took[r.name] = time.Since(since)
			case a == from && switched:
				t.Errorf("%s answered %s again after it had answered %s", r.name, from, to)
			case a != from && a != to:
				t.Errorf("%s answered %q, want %s or %s", r.name, a, from, to)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every replica answers %s within %s (those that did: %v)", to, within, took)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return took
}

// spread reports the first and the last of the times.
func spread(took map[string]time.Duration) (first, last time.Duration) {
	first = time.Hour
	for _, d := range took {
		first, last = min(first, d), max(last, d)
	}
	return first, last
}

// TestClusterConsistency: five replicas, observers 2. The primary is
// stopped: every replica moves to the secondary, once, and each logs the
// transition with the cluster's count of views; it is started again: every
// replica comes back. The times are reported (bench/cluster.sh measures
// them), not asserted.
func TestClusterConsistency(t *testing.T) {
	requireE2E(t)
	const (
		zone   = "example.org"
		name   = "www.example.org"
		prefix = "127.0.72"
	)
	east, secondary, rs := startPrimaryCluster(t, prefix, 5, zone, name)

	stopped := time.Now()
	east.stop(t)
	took := watchSwitch(t, rs, name, east.ip, secondary, stopped, 20*time.Second)
	first, last := spread(took)
	report(t, "failover: every replica answers the secondary after %s (first %s, spread %s): %v",
		last.Round(time.Millisecond), first.Round(time.Millisecond), (last - first).Round(time.Millisecond), took)
	for _, r := range rs {
		// quorum 18: one healthy view of two keeps it healthy, so the
		// cluster fails over when both observers say unhealthy.
		r.waitLogOnce(t, "check east: healthy -> unhealthy (0 of 2 views healthy", 5*time.Second)
	}

	started := time.Now()
	east.start(t)
	took = watchSwitch(t, rs, name, secondary, east.ip, started, 20*time.Second)
	first, last = spread(took)
	report(t, "failback: every replica answers the primary after %s (first %s, spread %s): %v",
		last.Round(time.Millisecond), first.Round(time.Millisecond), (last - first).Round(time.Millisecond), took)
	for _, r := range rs {
		r.waitLogOnce(t, "check east: unhealthy -> healthy (", 5*time.Second)
	}
}

// waitLogOnce waits until the replica's log holds s, and wants it there
// once: a second time is a flap.
func (r *replica) waitLogOnce(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.proc.Output(), s) {
		if time.Now().After(deadline) {
			t.Errorf("%s: no %q in the log within %s", r.name, s, within)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(r.proc.Output(), s); n != 1 {
		t.Errorf("%s logged %q %d times, want once", r.name, s, n)
	}
}

// TestClusterReplicaLoss: four replicas, observers 2. One observer of the
// check is killed (SIGKILL, no goodbye): once memberlist declares it dead
// the check has a new observer, and from the kill until then every
// surviving replica keeps answering the primary. Then the primary is
// stopped, the survivors fail over, and the killed replica is started
// again: it turns ready with the cluster's current view, so its first
// answer is the secondary, never the dead primary.
func TestClusterReplicaLoss(t *testing.T) {
	requireE2E(t)
	const (
		zone   = "example.org"
		name   = "www.example.org"
		prefix = "127.0.73"
	)
	east, secondary, rs := startPrimaryCluster(t, prefix, 4, zone, name)

	st, err := rs[0].CheckStatus(zone, "east")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Cluster.Observers) != 2 {
		t.Fatalf("observers of east: %v, want 2", st.Cluster.Observers)
	}
	victim := memberOf(rs)[st.Cluster.Observers[0]]
	if victim == nil {
		t.Fatalf("observer %s is none of the replicas", st.Cluster.Observers[0])
	}
	var survivors []*replica
	for _, r := range rs {
		if r != victim {
			survivors = append(survivors, r)
		}
	}

	// Ask every survivor, over and over, from the kill until the new
	// observer shows.
	stopPolling := pollAnswers(survivors, name, east.ip)
	killed := time.Now()
	victim.kill(t)
	dead := victim.member
	waitFor(t, 30*time.Second, "every survivor has a new observer in place of "+victim.name, func() (bool, string) {
		var lists []string
		ok := true
		for _, r := range survivors {
			obs := r.mustObservers(zone)
			lists = append(lists, r.name+"="+strings.Join(obs, ","))
			ok = ok && len(obs) == 2 && !slices.Contains(obs, dead)
		}
		return ok, strings.Join(lists, " ")
	})
	detected := time.Since(killed)
	polls, changed := stopPolling()
	report(t, "the check has a new observer on every survivor %s after the SIGKILL; %d answers asked meanwhile", detected.Round(time.Millisecond), polls)
	if polls < len(survivors) {
		t.Errorf("only %d answers asked while the observer was replaced", polls)
	}
	if len(changed) > 0 {
		t.Errorf("answers changed while an observer died (want %s throughout): %v", east.ip, changed)
	}

	// The primary goes down; the survivors fail over.
	east.stop(t)
	waitAnswers(t, survivors, name, secondary, 20*time.Second)

	// The killed replica comes back: ready only with the cluster's view.
	restarted := time.Now()
	victim.start(t)
	victim.waitReady(t, 20*time.Second)
	ready := time.Since(restarted)
	// /ready listens before the DNS servers do: the first answer is the
	// first reply, after refusals if any.
	var first reply
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := victim.query(name)
		if err == nil {
			first = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no answer within 5s of /ready: %v", victim.name, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	report(t, "%s restarted: ready after %s, first answer %s", victim.name, ready.Round(time.Millisecond), first)
	if first.rcode != "NOERROR" || !slices.Equal(first.addrs, []string{secondary}) {
		t.Errorf("%s's first answer after a restart: %s, want the secondary %s (the primary is down)", victim.name, first, secondary)
	}
	waitMembers(t, rs, 4, 20*time.Second)
	waitAnswers(t, rs, name, secondary, 5*time.Second)
}
