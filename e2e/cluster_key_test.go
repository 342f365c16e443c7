package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterKeyAndGarbage: two replicas with the same key_file share
// their views; a third with another key cannot join them and runs alone.
// Then garbage is sent to the gossip ports of a keyed replica and of one
// without a key: random datagrams, datagrams that pass for memberlist's
// user messages (which reach the plugin's decoder), and random TCP streams.
// No process dies, no answer changes while it arrives or after, the keyed
// pair stays a pair, and the plugin counts the garbage it was handed as
// malformed.
func TestClusterKeyAndGarbage(t *testing.T) {
	requireE2E(t)
	const (
		zone   = "example.org"
		name   = "www.example.org"
		prefix = "127.0.75"
	)
	east := startPrimaryNginx(t, prefix)
	body := clusterCheck("east", east, "/health") + clusterRecord(name, east.ip, prefix+".101")
	dir := t.TempDir()
	keyFile := func(name string) string {
		key := make([]byte, 32)
		rand.Read(key)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	shared, other := keyFile("shared.key"), keyFile("other.key")

	rs := newReplicas(t, prefix, 4, zone, "", body)
	var join []string
	for _, r := range rs[:3] {
		join = append(join, r.GossipAddr())
	}
	r1, r2, r3, plain := rs[0], rs[1], rs[2], rs[3]
	r1.corefile = r1.serverBlock(zone, join, "key_file "+shared, body)
	r2.corefile = r2.serverBlock(zone, join, "key_file "+shared, body)
	r3.corefile = r3.serverBlock(zone, join, "key_file "+other, body)
	plain.corefile = plain.serverBlock(zone, nil, "", body)

	pair := rs[:2]
	startAll(t, pair)
	waitMembers(t, pair, 2, 20*time.Second)
	waitFor(t, 10*time.Second, "r1 and r2 hold fresh views of each other", func() (bool, string) {
		for _, r := range pair {
			st, err := r.CheckStatus(zone, "east")
			if err != nil {
				return false, err.Error()
			}
			for _, o := range pair {
				if v, _ := st.View(o.member); !v.Fresh || !v.Healthy {
					return false, fmt.Sprintf("%s's views: %+v", r.name, st.Cluster.Views)
				}
			}
		}
		return true, ""
	})

	// Another key: its first join attempt fails, and it runs alone.
	r3.start(t)
	r3.waitReady(t, 20*time.Second)
	if !strings.Contains(r3.proc.Output(), "running alone") {
		t.Errorf("r3 (another key) does not log that it runs alone")
	}
	plain.start(t)
	plain.waitReady(t, 20*time.Second)
	// Watched for a while: gossip would have carried a member by now.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		for r, want := range map[*replica]float64{r1: 2, r2: 2, r3: 1, plain: 1} {
			if m := r.metric("coredns_healthfailover_cluster_members"); m != want {
				t.Fatalf("%s counts %v members, want %v", r.name, m, want)
			}
		}
	}
	if st, err := r1.CheckStatus(zone, "east"); err != nil {
		t.Error(err)
	} else if _, ok := st.View(r3.member); ok {
		t.Errorf("r1 holds a view of r3, which has another key: %+v", st.Cluster.Views)
	}
	waitAnswers(t, rs, name, east.ip, 5*time.Second)

	// Garbage, while every replica is asked all along.
	malformedBefore := plain.metric("coredns_healthfailover_cluster_messages_dropped_total", `reason="malformed"`)
	stopPolling := pollAnswers(rs, name, east.ip)
	seed := uint64(time.Now().UnixNano())
	t.Logf("garbage seed %d", seed)
	rnd := mrand.New(mrand.NewPCG(seed, 1))
	for _, target := range []*replica{r1, plain} {
		sendGarbage(t, rnd, target.GossipAddr())
	}
	// The garbage is in the sockets; let it be read before judging.
	time.Sleep(time.Second)
	polls, changed := stopPolling()

	for _, r := range rs {
		if r.proc.Exited() {
			t.Errorf("%s exited after the garbage (%v)", r.name, r.proc.State())
		}
	}
	if polls < len(rs) || len(changed) > 0 {
		t.Errorf("%d answers asked during the garbage; changed: %v", polls, changed)
	}
	waitAnswers(t, rs, name, east.ip, 5*time.Second)
	for r, want := range map[*replica]float64{r1: 2, r2: 2, r3: 1, plain: 1} {
		if m := r.metric("coredns_healthfailover_cluster_members"); m != want {
			t.Errorf("after the garbage %s counts %v members, want %v", r.name, m, want)
		}
	}
	malformed := plain.metric("coredns_healthfailover_cluster_messages_dropped_total", `reason="malformed"`) - malformedBefore
	report(t, "%d answers asked during the garbage, none changed; the replica without a key counted %v malformed messages", polls, malformed)
	if malformed < 1 {
		t.Errorf("the replica without a key counted no malformed message after %d user messages of garbage", garbageUserMessages)
	}
}

const garbageUserMessages = 200

// sendGarbage sends to a gossip address a few hundred datagrams and a few
// TCP streams of random bytes. Half the datagrams start as memberlist's
// user message (type 8), which memberlist hands to the plugin's decoder,
// some of those with the plugin's message version (1) too.
func sendGarbage(t *testing.T, rnd *mrand.Rand, addr string) {
	t.Helper()
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.UintN(256))
		}
		return b
	}
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i := range 200 + garbageUserMessages {
		b := random(1 + rnd.IntN(1400))
		if i >= 200 {
			b[0] = 8 // memberlist's userMsg
			if i%2 == 0 && len(b) > 1 {
				b[1] = 1 // the plugin's message version
			}
		}
		u.Write(b) // a refusal (ICMP) of one write shows in the next: ignored
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // not a flood: the socket's buffer
		}
	}
	// Streams: random, and starting as memberlist's push/pull (6) and user
	// message (8).
	for i := range 12 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Errorf("dial %s: %v", addr, err)
			continue
		}
		b := random(1 + rnd.IntN(4096))
		switch i % 3 {
		case 1:
			b[0] = 6
		case 2:
			b[0] = 8
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(b)
		c.Close()
	}
}
