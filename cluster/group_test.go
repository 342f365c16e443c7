package cluster

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/loopback"
)

type testLogger struct{ t testing.TB }

func (l testLogger) Infof(f string, v ...any)    { l.t.Logf("INFO "+f, v...) }
func (l testLogger) Warningf(f string, v ...any) { l.t.Logf("WARN "+f, v...) }
func (l testLogger) Errorf(f string, v ...any)   { l.t.Logf("ERR "+f, v...) }

// startNode starts a member on a free loopback port, joined to peers.
func startNode(t *testing.T, key []byte, peers ...*Node) *Node {
	t.Helper()
	port, err := loopback.DNSPort() // free for UDP and TCP, as memberlist needs
	if err != nil {
		t.Fatal(err)
	}
	var join []string
	for _, p := range peers {
		join = append(join, p.Bind())
	}
	n, err := Start(Config{Bind: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Join: join, Key: key, Logger: testLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 15s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decisions records what a group agreed, check by check.
type decisions struct {
	mu   sync.Mutex
	last map[string]Agreed
}

func (d *decisions) record(check string, a Agreed) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.last = map[string]Agreed{}
	}
	d.last[check] = a
}

func (d *decisions) get(check string) (Agreed, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.last[check]
	return a, ok
}

var east = Check{Name: "east", Key: "dns://example.org.:53 east 1", Interval: time.Second}

// member is a node with one group of the east check.
type member struct {
	*Node
	group *Group
	seen  *decisions
}

func newMember(t *testing.T, observers, quorum int, key []byte, peers ...member) member {
	var nodes []*Node
	for _, p := range peers {
		nodes = append(nodes, p.Node)
	}
	n := startNode(t, key, nodes...)
	seen := &decisions{}
	g := n.NewGroup(GroupConfig{Observers: observers, Quorum: quorum, Checks: []Check{east}}, seen.record)
	t.Cleanup(g.Close)
	return member{n, g, seen}
}

func startCluster(t *testing.T, size, observers, quorum int) []member {
	first := newMember(t, observers, quorum, nil)
	ms := []member{first}
	for range size - 1 {
		ms = append(ms, newMember(t, observers, quorum, nil, first))
	}
	for _, m := range ms {
		eventually(t, fmt.Sprintf("%s sees %d members", m.Name(), size), func() bool { return len(m.Members()) == size })
	}
	return ms
}

func agreedEverywhere(t *testing.T, ms []member, healthy bool, views int) {
	t.Helper()
	for _, m := range ms {
		eventually(t, fmt.Sprintf("%s agrees healthy=%v from %d views", m.Name(), healthy, views), func() bool {
			a, ok := m.seen.get("east")
			return ok && a.Healthy == healthy && a.Views == views
		})
	}
}

func TestEveryMemberAgreesByQuorum(t *testing.T) {
	ms := startCluster(t, 3, 3, DefaultQuorum)
	ms[0].group.Publish("east", false, time.Now(), "connect_refused", "connect: connection refused")
	ms[1].group.Publish("east", true, time.Now(), "ok", "status 200")
	ms[2].group.Publish("east", true, time.Now(), "ok", "status 200")
	// One observer of three cut off from the target is no reason to fail
	// over: 2 of 3 healthy is more than 18 %.
	agreedEverywhere(t, ms, true, 3)

	ms[1].group.Publish("east", false, time.Now(), "connect_refused", "connect: connection refused")
	agreedEverywhere(t, ms, true, 3) // 1 of 3 is still more than 18 %
	ms[2].group.Publish("east", false, time.Now(), "connect_refused", "connect: connection refused")
	agreedEverywhere(t, ms, false, 3)
	for _, m := range ms {
		if a, _ := m.seen.get("east"); a.HealthyViews != 0 || a.Reason != "connect_refused" {
			t.Errorf("%s: %+v, want 0 healthy views and the reason of an unhealthy one", m.Name(), a)
		}
	}
}

func TestHigherQuorumNeedsMoreHealthyViews(t *testing.T) {
	ms := startCluster(t, 3, 3, 50)
	ms[0].group.Publish("east", false, time.Now(), "connect_refused", "")
	ms[1].group.Publish("east", true, time.Now(), "ok", "")
	ms[2].group.Publish("east", true, time.Now(), "ok", "")
	agreedEverywhere(t, ms, true, 3) // 2 of 3 is more than half
	ms[1].group.Publish("east", false, time.Now(), "connect_refused", "")
	agreedEverywhere(t, ms, false, 3) // 1 of 3 is not
}

func TestOnlyObserversProbe(t *testing.T) {
	ms := startCluster(t, 4, 2, DefaultQuorum)
	observers := observersOf(east.Key, ms[0].Members(), 2)
	for _, m := range ms {
		if isObserver := slices.Contains(observers, m.Name()); isObserver {
			m.group.Publish("east", true, time.Now(), "ok", "status 200")
		}
	}
	agreedEverywhere(t, ms, true, 2)
	for _, m := range ms {
		if want := slices.Contains(observers, m.Name()); m.group.Probes("east") != want {
			t.Errorf("%s probes: %v, want %v (observers %v)", m.Name(), !want, want, observers)
		}
	}
}

// A member with no fresh view of an observer probes the check itself and
// answers from its own view: never from nothing.
func TestWithoutFreshViewsAMemberProbesItself(t *testing.T) {
	ms := startCluster(t, 2, 1, DefaultQuorum)
	observer, other := ms[0], ms[1]
	if !slices.Contains(observersOf(east.Key, ms[0].Members(), 1), observer.Name()) {
		observer, other = other, observer
	}
	if !other.group.Probes("east") {
		t.Fatal("a member with no view of the observer does not probe")
	}
	observer.group.Publish("east", true, time.Now(), "ok", "")
	eventually(t, "the other member stops probing once the observer's view arrived", func() bool { return !other.group.Probes("east") })

	// The observer's view goes stale, as when its prober hangs.
	other.mu.Lock()
	other.views[east.Key][observer.Name()].received = time.Now().Add(-time.Hour)
	other.mu.Unlock()
	other.group.evaluateAll()
	if !other.group.Probes("east") {
		t.Error("a member whose only view of the observer is stale does not probe")
	}
	other.group.Publish("east", false, time.Now(), "connect_refused", "")
	if a, _ := other.seen.get("east"); a.Healthy || a.Views != 1 {
		t.Errorf("agreed %+v, want unhealthy from its own view", a)
	}
}

func TestAnOlderViewNeverReplacesANewerOne(t *testing.T) {
	ms := startCluster(t, 2, 2, DefaultQuorum)
	a, b := ms[0], ms[1]
	a.group.Publish("east", true, time.Now(), "ok", "")
	b.group.Publish("east", true, time.Now(), "ok", "")
	agreedEverywhere(t, ms, true, 2)

	b.merge([]View{{Check: east.Key, Origin: a.Name(), Seq: 1 << 62, Healthy: false}})
	eventually(t, "a newer view is taken", func() bool { x, _ := b.seen.get("east"); return x.HealthyViews == 1 })
	b.merge([]View{{Check: east.Key, Origin: a.Name(), Seq: 1<<62 - 1, Healthy: true}})
	if x, _ := b.seen.get("east"); x.HealthyViews != 1 {
		t.Errorf("a late, older view changed the agreement: %+v", x)
	}
	if b.Stats().Stale.Load() == 0 {
		t.Error("the older view is not counted as stale")
	}
}

// A member that leaves takes its views with it: nothing it said before
// counts, even when a late packet of it arrives.
func TestViewsOfAMemberThatLeftAreForgotten(t *testing.T) {
	ms := startCluster(t, 3, 3, 50)
	for _, m := range ms {
		m.group.Publish("east", m != ms[2], time.Now(), "ok", "")
	}
	agreedEverywhere(t, ms, true, 3)
	gone := ms[2]
	late := View{Check: east.Key, Origin: gone.Name(), Seq: 1 << 62, Healthy: false}
	gone.Stop()
	rest := ms[:2]
	agreedEverywhere(t, rest, true, 2)
	unknown := rest[0].Stats().Unknown.Load()
	rest[0].merge([]View{late})
	if a, _ := rest[0].seen.get("east"); a.Views != 2 {
		t.Errorf("a view of the departed member counts: %+v", a)
	}
	if rest[0].Stats().Unknown.Load() != unknown+1 {
		t.Error("the departed member's view is not counted as from no member")
	}
}

func TestAJoiningMemberLearnsEveryViewAtOnce(t *testing.T) {
	ms := startCluster(t, 2, 2, DefaultQuorum)
	for _, m := range ms {
		m.group.Publish("east", false, time.Now(), "connect_refused", "")
	}
	agreedEverywhere(t, ms, false, 2)
	late := newMember(t, 2, DefaultQuorum, nil, ms[0])
	// Nothing is published again: the full-state exchange of the join
	// brought the views.
	eventually(t, "the new member is ready", late.group.Ready)
	if a, _ := late.seen.get("east"); a.Healthy {
		t.Errorf("the new member agreed %+v, want unhealthy as the others", a)
	}
}

func TestMembersWithAnotherKeyDoNotJoin(t *testing.T) {
	key1 := []byte("0123456789abcdef")
	key2 := []byte("fedcba9876543210")
	a := newMember(t, 2, DefaultQuorum, key1)
	b := newMember(t, 2, DefaultQuorum, key1, a)
	eventually(t, "members with the same key join", func() bool { return len(a.Members()) == 2 && len(b.Members()) == 2 })
	c := newMember(t, 2, DefaultQuorum, key2, a)
	// Start's join attempt is over when it returns: it failed.
	if len(c.Members()) != 1 || len(a.Members()) != 2 {
		t.Errorf("a member with another key joined: %v / %v", c.Members(), a.Members())
	}
}

func TestGarbageChangesNothing(t *testing.T) {
	ms := startCluster(t, 2, 2, DefaultQuorum)
	for _, m := range ms {
		m.group.Publish("east", true, time.Now(), "ok", "")
	}
	agreedEverywhere(t, ms, true, 2)
	d := &delegate{ms[0].Node}
	for i := range 200 {
		d.NotifyMsg([]byte(fmt.Sprintf("garbage %d", i)))
		d.MergeRemoteState([]byte{messageVersion, 0xff}, false)
	}
	if got := ms[0].Stats().Malformed.Load(); got != 400 {
		t.Errorf("%d malformed messages counted, want 400", got)
	}
	if a, _ := ms[0].seen.get("east"); !a.Healthy || a.Views != 2 {
		t.Errorf("garbage changed the agreement: %+v", a)
	}
}

// Names in `join` are resolved through `resolver` when it is given: cluster
// DNS pods use the node's resolver, which does not know the Services.
func TestJoinResolvesNamesThroughTheResolver(t *testing.T) {
	first := startNode(t, nil)
	host, port, _ := net.SplitHostPort(first.Bind())
	dnsAddr := serveA(t, "peers.cluster.test.", host)
	n, err := Start(Config{Bind: "127.0.0.1:" + strconv.Itoa(freePort(t)), Join: []string{"peers.cluster.test:" + port},
		Resolver: dnsAddr, Logger: testLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	if got := len(n.Members()); got != 2 {
		t.Errorf("%d members after joining through the resolver, want 2", got)
	}
}

// Peers that accept and never answer (a pod on a dead node, still in the
// headless Service) are joined at once, not one after the other: start-up
// waits one gossip timeout, not one per such peer.
func TestSilentPeersAreJoinedTogether(t *testing.T) {
	var open atomic.Int32
	var most atomic.Int32
	var peers []string
	for range 4 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				now := open.Add(1)
				for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
				}
				go func() { // hold it silent until the joiner gives up
					io.Copy(io.Discard, conn)
					conn.Close()
					open.Add(-1)
				}()
			}
		}()
		peers = append(peers, l.Addr().String())
	}
	n, err := Start(Config{Bind: "127.0.0.1:" + strconv.Itoa(freePort(t)), Join: peers, Logger: testLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	if got := most.Load(); got != 4 {
		t.Errorf("at most %d of 4 silent peers were being joined at once, want all 4", got)
	}
}
