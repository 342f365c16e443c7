package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/replicas"
)

// TestClusterPartition: three replicas, each in a network namespace of its
// own, and the backends in another, all on one bridge. Each replica serves
// two server blocks that differ only in their quorum: q18.test with the
// default (healthy while more than 18 % of the fresh views say so) and
// q50.test with `quorum 50`. Replicas are cut off from the primary only,
// one at a time (a blackhole route to it in their namespace; the gossip
// still flows):
//
//   - one cut off (1 of 3 views unhealthy): every replica, the cut-off one
//     included, keeps answering the primary in both blocks;
//   - two cut off (1 of 3 healthy, 33 %): still the primary with the
//     default quorum, the secondary with quorum 50, on every replica;
//   - all cut off: everyone fails over in both; the routes removed,
//     everyone fails back.
func TestClusterPartition(t *testing.T) {
	requireE2E(t)
	lab := newNetnsLab(t)
	const (
		primaryIP   = "10.250.0.2"
		secondaryIP = "10.250.0.3"
		name18      = "www.q18.test"
		name50      = "www.q50.test"
	)
	backends := lab.add(t, "be", primaryIP+"/24", secondaryIP+"/24")
	primary := startCountedNginx(t, "PRIMARY", backends, primaryIP, 8080, func(name string, args ...string) []string {
		return lab.command(backends, name, args...)
	})

	rs := nsReplicas(t, lab, 3)
	var join []string
	for _, r := range rs {
		join = append(join, r.GossipAddr())
	}
	check := clusterCheck("east", primary, "/health")
	for _, r := range rs {
		r.corefile = r.serverBlock("q18.test", join, "", check+clusterRecord(name18, primaryIP, secondaryIP)) +
			r.serverBlock("q50.test", join, "quorum 50", check+clusterRecord(name50, primaryIP, secondaryIP))
	}
	startAll(t, rs)
	waitMembers(t, rs, 3, 20*time.Second)
	waitAnswers(t, rs, name18, primaryIP, 10*time.Second)
	waitAnswers(t, rs, name50, primaryIP, 10*time.Second)

	cut := func(r *replica) { lab.run(t, "-n", r.ns, "route", "add", "blackhole", primaryIP+"/32") }
	// seen waits until every replica holds an unhealthy view of the check
	// from each cut-off replica, in both blocks: the cut has been noticed
	// and told, so that answers judged after it are the cluster's verdict.
	seen := func(off ...*replica) {
		t.Helper()
		var names []string
		for _, o := range off {
			names = append(names, o.name)
		}
		waitFor(t, 20*time.Second, "every replica holds the unhealthy views of "+strings.Join(names, ", "), func() (bool, string) {
			for _, r := range rs {
				for _, zone := range []string{"q18.test", "q50.test"} {
					st, err := r.CheckStatus(zone, "east")
					if err != nil {
						return false, err.Error()
					}
					for _, o := range off {
						if v, _ := st.View(o.member); !v.Fresh || v.Healthy {
							return false, fmt.Sprintf("%s, %s: %+v", r.name, zone, st.Cluster.Views)
						}
					}
				}
			}
			return true, ""
		})
	}

	// One replica cut off: one view of three unhealthy.
	cut(rs[0])
	seen(rs[0])
	holdAnswers(t, rs, 4*clusterInterval, map[string]string{name18: primaryIP, name50: primaryIP})

	// Two: one view of three healthy, 33 %: more than 18, not more than 50.
	cut(rs[1])
	seen(rs[0], rs[1])
	waitAnswers(t, rs, name50, secondaryIP, 10*time.Second)
	holdAnswers(t, rs, 4*clusterInterval, map[string]string{name18: primaryIP, name50: secondaryIP})

	// All: no view healthy.
	cut(rs[2])
	waitAnswers(t, rs, name18, secondaryIP, 10*time.Second)
	waitAnswers(t, rs, name50, secondaryIP, 10*time.Second)

	// The routes gone, everyone fails back.
	for _, r := range rs {
		lab.run(t, "-n", r.ns, "route", "del", "blackhole", primaryIP+"/32")
	}
	waitAnswers(t, rs, name18, primaryIP, 10*time.Second)
	waitAnswers(t, rs, name50, primaryIP, 10*time.Second)
	if primary.requests(t, "/health") == 0 {
		t.Errorf("no probe reached the primary's nginx")
	}
}

// nsReplicas makes n replicas, r1 … rn, at 10.250.0.11 … and each in a
// network namespace of its own in lab: there every replica has the same
// ports free, and serves on the namespace's 127.0.0.1. Nothing starts.
func nsReplicas(t *testing.T, lab *netnsLab, n int) []*replica {
	t.Helper()
	ports := replicas.Ports{DNS: 5300, Ready: 8181, Metrics: 9153, Status: 9154, Gossip: 7946}
	var rs []*replica
	for i := 1; i <= n; i++ {
		r := &replica{Replica: replicas.Replica{IP: fmt.Sprintf("10.250.0.%d", 10+i), Serve: "127.0.0.1", Ports: ports}, name: fmt.Sprintf("r%d", i)}
		r.ns = lab.add(t, r.name, r.IP+"/24")
		r.HTTP = httpClientIn(r.ns)
		r.bin = lab.command(r.ns, corednsBin)
		rs = append(rs, r)
	}
	return rs
}

// holdAnswers asks every replica for each name, over and over for d, and
// fails on any answer other than want's.
func holdAnswers(t *testing.T, rs []*replica, d time.Duration, want map[string]string) {
	t.Helper()
	var wrong []string
	polls := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, r := range rs {
			for name, w := range want {
				polls++
				if a := r.answer(name); a != w && len(wrong) < 10 {
					wrong = append(wrong, fmt.Sprintf("%s: %s answered %q, want %s", r.name, name, a, w))
				}
			}
		}
	}
	if len(wrong) > 0 {
		t.Errorf("answers changed (%d asked): %s", polls, strings.Join(wrong, "; "))
	}
}

// TestClusterJoinSilentPeers: a replica whose `join` names peers that never
// answer (their packets go to a namespace that does not forward them: no
// refusal comes back, a connect waits for its timeout) besides one that
// runs still turns ready, within a bound, and joins the live one at once.
// Each silent peer costs its start one gossip connect timeout (3 s), as
// memberlist tries the peers one after the other: the time is reported.
func TestClusterJoinSilentPeers(t *testing.T) {
	requireE2E(t)
	lab := newNetnsLab(t)
	const (
		sinkIP = "10.250.0.2"
		name   = "www.example.org"
		silent = 2
	)
	// The sink takes the packets for 10.99.0.0/16 and drops them: a
	// new namespace does not forward.
	sink := lab.add(t, "sink", sinkIP+"/24")
	backend := startCountedNginx(t, "PRIMARY", sink, sinkIP, 8080, func(name string, args ...string) []string {
		return lab.command(sink, name, args...)
	})
	rs := nsReplicas(t, lab, 2)
	for _, r := range rs {
		lab.run(t, "-n", r.ns, "route", "add", "10.99.0.0/16", "via", sinkIP)
	}
	r1, r2 := rs[0], rs[1]
	body := clusterCheck("east", backend, "/health") + clusterRecord(name, sinkIP, "10.250.0.3")
	var join []string
	for i := 1; i <= silent; i++ {
		join = append(join, fmt.Sprintf("10.99.0.%d:7946", i))
	}
	r1.corefile = r1.serverBlock("example.org", append(join, r2.GossipAddr()), "", body)
	r2.corefile = r2.serverBlock("example.org", nil, "", body)
	startAll(t, rs[1:])

	started := time.Now()
	r1.start(t)
	r1.waitReady(t, time.Duration(silent)*3*time.Second+10*time.Second)
	report(t, "r1 ready %s after its start, with %d silent peers and one live one in its join list",
		time.Since(started).Round(time.Millisecond), silent)
	if !strings.Contains(r1.proc.Output(), "joined 1 of") {
		t.Errorf("r1 does not log that it joined one peer")
	}
	waitMembers(t, rs, 2, 5*time.Second)
	waitAnswers(t, rs, name, sinkIP, 5*time.Second)
}
