package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestClusterJoinUnreachable: a replica whose `join` peers are all
// unreachable (nothing listens at their addresses) does not wait for them:
// it turns ready, runs alone, probing the check itself, and says so in its
// log. A peer that starts later, joining nobody, is found by the replica's
// retry (every 10 s), and then the two share their views.
func TestClusterJoinUnreachable(t *testing.T) {
	requireE2E(t)
	const (
		zone   = "example.org"
		name   = "www.example.org"
		prefix = "127.0.74"
	)
	east := startPrimaryNginx(t, prefix)
	body := clusterCheck("east", east, "/health") + clusterRecord(name, east.ip, prefix+".101")
	// r1 joins r2 and r3, neither running; r2 will join nobody.
	rs := newReplicas(t, prefix, 3, zone, "", body)
	r1, r2 := rs[0], rs[1]
	r2.corefile = r2.serverBlock(zone, nil, "", body)

	started := time.Now()
	r1.start(t)
	r1.waitReady(t, 15*time.Second)
	report(t, "r1 ready %s after its start, with no peer to join", time.Since(started).Round(time.Millisecond))
	if !strings.Contains(r1.proc.Output(), "running alone") {
		t.Errorf("r1 does not log that it runs alone")
	}
	if m := r1.metric("coredns_healthfailover_cluster_members"); m != 1 {
		t.Errorf("r1 counts %v members, want 1 (itself)", m)
	}
	waitAnswers(t, rs[:1], name, east.ip, 5*time.Second)
	if st, err := r1.CheckStatus(zone, "east"); err != nil {
		t.Error(err)
	} else if v, _ := st.View(r1.member); !v.Fresh || !v.Healthy {
		t.Errorf("r1 alone holds no fresh healthy view of its own: %+v", st.Cluster)
	}

	// r2 starts alone; r1's next join attempt finds it.
	r2.start(t)
	r2.waitReady(t, 15*time.Second)
	joined := time.Now()
	waitMembers(t, rs[:2], 2, 25*time.Second)
	report(t, "r1 and r2 joined %s after r2 was ready (r1 retries every 10s)", time.Since(joined).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "r1 and r2 hold fresh views of each other", func() (bool, string) {
		for _, r := range rs[:2] {
			st, err := r.CheckStatus(zone, "east")
			if err != nil {
				return false, err.Error()
			}
			for _, other := range rs[:2] {
				if v, _ := st.View(other.member); !v.Fresh {
					return false, r.name + " has no fresh view of " + other.name
				}
			}
		}
		return true, ""
	})
	waitAnswers(t, rs[:2], name, east.ip, 5*time.Second)
}
