package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Node is this replica's member of the cluster: one memberlist per gossip
// address, shared by every server block that names it and handed from one
// configuration to the next on reload, so that a reload neither leaves nor
// rejoins. It holds every view it has heard of, its own included.
type Node struct {
	cfg  Config
	name string
	ml   *memberlist.Memberlist
	// queue holds views waiting to ride on memberlist's gossip: every view
	// reaches every member this way, after a direct send when it changed.
	queue *memberlist.TransmitLimitedQueue

	mu      sync.RWMutex
	alive   map[string]string            // member name → address, this one included
	members []string                     // the names of alive, sorted; replaced, never changed
	epoch   uint64                       // counts changes of members
	views   map[string]map[string]*entry // check key → origin → latest view
	groups  map[string]*Group            // by check key
	all     map[*Group]bool
	joinTo  []string
	lookup  string // cfg.Resolver, as the last configuration has it

	keyring *memberlist.Keyring // nil without key_file
	logs    *logWriter
	seq     atomic.Uint64
	settled atomic.Bool
	stats   Stats

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once
}

// entry is a view and when it arrived here (by this member's clock: views
// age by the receiver's clock, so members need no synchronised clocks).
type entry struct {
	View
	received time.Time
}

// Stats count what the node sent and received, for metrics.
type Stats struct {
	ViewsSent, ViewsReceived atomic.Uint64
	// Dropped counts messages of ours that were malformed, and views that
	// were stale (an older Seq) or came from no member.
	Malformed, Stale, Unknown atomic.Uint64
	BytesSent, BytesReceived  atomic.Uint64
}

// Memberlist's timings are its LAN defaults, chosen on purpose: a member is
// probed every second and a silent one is declared dead after a suspicion
// of about 4 s (5 s from 10 members on). Faster detection flaps membership
// on a loaded node, and every membership change moves probing; a view of a
// member not yet declared dead still ages out (staleAfter).
func memberlistConfig(cfg Config, name string, d *delegate, transport memberlist.Transport, logs *logWriter) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	host, port, err := ParseHostPort(cfg.Bind, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("bind: %v", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.Advertise != "" {
		host, port, err := ParseHostPort(cfg.Advertise, port)
		if err != nil {
			return nil, fmt.Errorf("advertise: %v", err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = host, port
	}
	mc.Delegate = d
	mc.Events = d
	mc.Transport = transport
	mc.TCPTimeout = 3 * time.Second // bounds a join to a peer that does not answer
	mc.DNSConfigPath = ""           // names in `join` are resolved by the system resolver, by us
	mc.Logger = log.New(logs, "", 0)
	if cfg.Key != nil {
		keyring, err := memberlist.NewKeyring(nil, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("key_file: %v", err)
		}
		mc.Keyring = keyring
	}
	return mc, nil
}

// Start creates the node, listening on cfg.Bind, and makes a first attempt
// to join cfg.Join; it returns after that attempt, so that the checks a
// member observes are chosen with the members it could reach. A failed
// join is logged and retried in the background: the member runs alone
// meanwhile, probing every check itself.
func Start(cfg Config) (*Node, error) {
	if cfg.JoinRetry == 0 {
		cfg.JoinRetry = DefaultJoinRetry
	}
	n := &Node{
		cfg:    cfg,
		name:   memberName(),
		alive:  map[string]string{},
		views:  map[string]map[string]*entry{},
		groups: map[string]*Group{},
		all:    map[*Group]bool{},
		joinTo: cfg.Join,
		lookup: cfg.Resolver,
		kick:   make(chan struct{}, 1),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.logs = &logWriter{log: cfg.Logger}
	n.queue = &memberlist.TransmitLimitedQueue{NumNodes: n.numMembers, RetransmitMult: 3}

	host, port, err := ParseHostPort(cfg.Bind, DefaultPort)
	if err != nil {
		return nil, fmt.Errorf("bind: %v", err)
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port,
		Logger: log.New(n.logs, "", 0)})
	if err != nil {
		return nil, fmt.Errorf("cluster bind %s: %v", cfg.Bind, err)
	}
	transport := newCountingTransport(nt, &n.stats.BytesSent, &n.stats.BytesReceived)
	mc, err := memberlistConfig(cfg, n.name, &delegate{n}, transport, n.logs)
	if err != nil {
		transport.Shutdown()
		return nil, err
	}
	n.keyring = mc.Keyring
	n.ml, err = memberlist.Create(mc)
	if err != nil {
		n.logs.close()
		transport.Shutdown()
		return nil, fmt.Errorf("cluster bind %s: %v", cfg.Bind, err)
	}
	if cfg.Key == nil {
		cfg.Logger.Warningf("cluster %s: gossip is not encrypted: anyone who can reach the port can change health; set key_file", cfg.Bind)
	}
	self := n.ml.LocalNode()
	cfg.Logger.Infof("cluster %s: member %s, reachable at %s", cfg.Bind, n.name, self.Address())
	n.join(true)
	n.settled.Store(true)
	n.wg.Add(2)
	go n.loop()
	go n.joinLoop()
	return n, nil
}

// memberName is unique per process start: a member that restarts is a new
// member, so no view of its previous life can pass for a current one.
func memberName() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "member"
	}
	var b [4]byte
	rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Name is this member's name.
func (n *Node) Name() string { return n.name }

// Bind is the gossip address the node was started with.
func (n *Node) Bind() string { return n.cfg.Bind }

// Stats returns the node's counters.
func (n *Node) Stats() *Stats { return &n.stats }

// Settled reports whether the first join attempt is over.
func (n *Node) Settled() bool { return n.settled.Load() }

// Members returns the names of the alive members, this one included, sorted.
func (n *Node) Members() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.members
}

// membership is the alive members and the epoch they belong to.
func (n *Node) membership() ([]string, uint64) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.members, n.epoch
}

// freshViews appends the views of check by the named members that arrived
// within staleAfter.
func (n *Node) freshViews(dst []Observation, check string, names []string, staleAfter time.Duration, now time.Time) []Observation {
	n.mu.RLock()
	defer n.mu.RUnlock()
	byOrigin := n.views[check]
	for _, name := range names {
		if e, ok := byOrigin[name]; ok && now.Sub(e.received) <= staleAfter {
			dst = append(dst, Observation{Member: name, Healthy: e.Healthy, Since: e.Since, Reason: e.Reason, Message: e.Message, Age: now.Sub(e.received)})
		}
	}
	return dst
}

func (n *Node) numMembers() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.members)
}

// Update takes a new configuration's settings for a running node: its
// join list and resolver, and its key, which becomes the one gossip is encrypted with
// while the old one is still accepted, so that replicas can move to a new
// key one by one. The bind and advertise addresses stay until a restart.
func (n *Node) Update(cfg Config) {
	n.mu.Lock()
	n.joinTo, n.lookup = cfg.Join, cfg.Resolver
	n.mu.Unlock()
	if cfg.Advertise != n.cfg.Advertise {
		n.cfg.Logger.Warningf("cluster %s: advertise %s takes effect at the next restart; still %s", n.cfg.Bind, cfg.Advertise, n.cfg.Advertise)
	}
	if cfg.Key == nil || n.cfg.Key == nil {
		if (cfg.Key == nil) != (n.cfg.Key == nil) {
			n.cfg.Logger.Warningf("cluster %s: adding or removing key_file takes effect at the next restart", n.cfg.Bind)
		}
		return
	}
	if n.keyring != nil && !slices.Equal(n.keyring.GetPrimaryKey(), cfg.Key) {
		if err := n.keyring.AddKey(cfg.Key); err == nil {
			n.keyring.UseKey(cfg.Key)
			n.cfg.Logger.Infof("cluster %s: gossip now encrypted with the new key; the previous one is still accepted", n.cfg.Bind)
		}
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Stop leaves the cluster, telling the others at once rather than letting
// them detect a failure, and stops the node. It may be called more than once.
func (n *Node) Stop() {
	n.stop.Do(func() {
		n.cancel()
		n.wg.Wait()
		if err := n.ml.Leave(2 * time.Second); err != nil {
			n.cfg.Logger.Warningf("cluster %s: leave: %v", n.cfg.Bind, err)
		}
		n.logs.close()
		n.ml.Shutdown()
		n.cfg.Logger.Infof("cluster %s: member %s left", n.cfg.Bind, n.name)
	})
}

// loop re-evaluates every check when membership changes and when a view
// may have gone stale.
func (n *Node) loop() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		case <-tick.C:
			n.prune(time.Now())
		}
		n.evaluateAll()
	}
}

// joinLoop joins the peers it is not connected to, on its own so that a
// slow join never holds up the re-evaluation of checks.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	join := time.NewTicker(n.cfg.JoinRetry)
	defer join.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-join.C:
			n.join(false)
		}
	}
}

func (n *Node) evaluateAll() {
	n.mu.RLock()
	groups := make([]*Group, 0, len(n.all))
	for g := range n.all {
		groups = append(groups, g)
	}
	n.mu.RUnlock()
	for _, g := range groups {
		g.evaluateAll()
	}
}

// join resolves the `join` peers and joins those that are not members yet.
func (n *Node) join(first bool) {
	n.mu.RLock()
	peers, resolver := n.joinTo, resolverFor(n.lookup)
	known := make(map[string]bool, len(n.alive))
	for _, addr := range n.alive {
		known[addr] = true
	}
	n.mu.RUnlock()
	if len(peers) == 0 {
		return
	}
	self := n.ml.LocalNode().Address()
	var targets []string
	var failures []string
	for _, p := range peers {
		addrs, err := resolve(n.ctx, resolver, p)
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		for _, a := range addrs {
			if a != self && !known[a] {
				targets = append(targets, a)
			}
		}
	}
	if len(targets) == 0 {
		if first && len(failures) > 0 {
			n.cfg.Logger.Warningf("cluster %s: no peer to join (%v); running alone, retrying every %s", n.cfg.Bind, failures, n.cfg.JoinRetry)
		}
		return
	}
	joined, errs := n.joinEach(targets)
	switch {
	case joined > 0:
		n.cfg.Logger.Infof("cluster %s: joined %d of %v; %d members", n.cfg.Bind, joined, targets, n.numMembers())
	case first:
		n.cfg.Logger.Warningf("cluster %s: could not join %v (%v); running alone, retrying every %s", n.cfg.Bind, targets, errs, n.cfg.JoinRetry)
	}
}

// joinEach joins every target at once rather than one after the other:
// memberlist waits up to its TCP timeout for each peer that does not
// answer (a pod on a dead node stays in a headless Service until evicted),
// and start-up should wait that long once, not once per such peer.
func (n *Node) joinEach(targets []string) (int, []error) {
	var mu sync.Mutex
	var joined int
	var errs []error
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.ml.Join([]string{t})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			joined++
		}()
	}
	wg.Wait()
	return joined, errs
}

// resolverFor is the system's resolver, or one that asks only server.
func resolverFor(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// resolve turns one `join` entry into addresses: an address as it is, a
// name into every address it has now (a headless Service: every replica).
func resolve(ctx context.Context, r *net.Resolver, peer string) ([]string, error) {
	host, port, err := ParseHostPort(peer, DefaultPort)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), strconv.Itoa(port))}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ips, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip, strconv.Itoa(port))
	}
	return out, nil
}

// publish stores this member's own view and sends it: at once to every
// member when its health changed, and in any case on the gossip, which
// also refreshes it at the others before it goes stale.
func (n *Node) publish(v View) {
	v.Origin = n.name
	v.Seq = n.seq.Add(1)
	now := time.Now()
	n.mu.Lock()
	old := n.views[v.Check][n.name]
	n.store(v, now)
	n.mu.Unlock()

	msg := appendViews(nil, []View{v})
	if old == nil || old.Healthy != v.Healthy {
		for _, m := range n.ml.Members() {
			if m.Name != n.name {
				n.ml.SendBestEffort(m, msg)
				n.stats.ViewsSent.Add(1)
			}
		}
	}
	n.queue.QueueBroadcast(&viewBroadcast{name: v.Check, msg: msg})
	n.stats.ViewsSent.Add(1)
}

// store keeps v; n.mu is held.
func (n *Node) store(v View, now time.Time) {
	byOrigin := n.views[v.Check]
	if byOrigin == nil {
		byOrigin = map[string]*entry{}
		n.views[v.Check] = byOrigin
	}
	byOrigin[v.Origin] = &entry{View: v, received: now.Add(-v.Age)}
}

// merge takes views from another member and re-evaluates the checks whose
// views changed. A view of this member itself, of no alive member, or
// older than the one held is dropped.
func (n *Node) merge(views []View) {
	now := time.Now()
	changed := map[*Group][]string{}
	n.mu.Lock()
	for _, v := range views {
		if _, ok := n.alive[v.Origin]; !ok || v.Origin == n.name {
			n.stats.Unknown.Add(1)
			continue
		}
		if old := n.views[v.Check][v.Origin]; old != nil && old.Seq >= v.Seq {
			if old.Seq > v.Seq {
				n.stats.Stale.Add(1) // the gossip repeats views: only an older one is news
			}
			continue
		}
		n.stats.ViewsReceived.Add(1)
		n.store(v, now)
		if g := n.groups[v.Check]; g != nil {
			changed[g] = append(changed[g], v.Check)
		}
	}
	n.mu.Unlock()
	for g, keys := range changed {
		g.evaluateKeys(keys)
	}
}

// prune forgets views nobody refreshed for long: checks that no longer
// exist, members that stopped observing.
func (n *Node) prune(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for key, byOrigin := range n.views {
		for origin, e := range byOrigin {
			if now.Sub(e.received) > forgetAfter {
				delete(byOrigin, origin)
			}
		}
		if len(byOrigin) == 0 {
			delete(n.views, key)
		}
	}
}

// forgetAfter is how long a view nobody refreshes is kept, well past any
// check's staleness, for the status page.
const forgetAfter = 10 * time.Minute

// observations returns the views of a check held here, with their age.
func (n *Node) observations(key string, now time.Time) map[string]Observation {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make(map[string]Observation, len(n.views[key]))
	for origin, e := range n.views[key] {
		out[origin] = Observation{Member: origin, Healthy: e.Healthy, Since: e.Since, Reason: e.Reason, Message: e.Message, Age: now.Sub(e.received)}
	}
	return out
}

// register makes g the owner of its checks' keys (a new configuration's
// group takes them over from the old one's).
func (n *Node) register(g *Group) {
	n.mu.Lock()
	n.all[g] = true
	for key := range g.byKey {
		n.groups[key] = g
	}
	n.mu.Unlock()
}

func (n *Node) unregister(g *Group) {
	n.mu.Lock()
	delete(n.all, g)
	for key := range g.byKey {
		if n.groups[key] == g {
			delete(n.groups, key)
		}
	}
	n.mu.Unlock()
}

// delegate is memberlist's view of the node: messages and state exchange
// (memberlist.Delegate) and membership events (memberlist.EventDelegate).
// Membership events arrive under memberlist's own lock: they only record
// and kick the loop.
type delegate struct{ n *Node }

func (d *delegate) NodeMeta(int) []byte { return nil }

func (d *delegate) NotifyMsg(b []byte) {
	views, err := decodeViews(b)
	if err != nil {
		d.n.stats.Malformed.Add(1)
		return
	}
	d.n.merge(views)
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n.queue.GetBroadcasts(overhead, limit)
}

// LocalState is every view this member holds, for a member that joins or
// exchanges full state: it learns everything from one peer.
func (d *delegate) LocalState(bool) []byte {
	now := time.Now()
	d.n.mu.RLock()
	var views []View
	for _, byOrigin := range d.n.views {
		for _, e := range byOrigin {
			v := e.View
			v.Age = now.Sub(e.received)
			views = append(views, v)
		}
	}
	d.n.mu.RUnlock()
	return appendViews(nil, views)
}

func (d *delegate) MergeRemoteState(b []byte, _ bool) {
	d.NotifyMsg(b)
}

func (d *delegate) NotifyJoin(m *memberlist.Node) {
	d.n.mu.Lock()
	d.n.alive[m.Name] = m.Address()
	d.n.members = sortedNames(d.n.alive)
	d.n.epoch++
	d.n.mu.Unlock()
	d.kick()
}

// NotifyLeave forgets the views of a member that left or died: were it to
// come back, only what it probes then counts.
func (d *delegate) NotifyLeave(m *memberlist.Node) {
	d.n.mu.Lock()
	delete(d.n.alive, m.Name)
	d.n.members = sortedNames(d.n.alive)
	d.n.epoch++
	for _, byOrigin := range d.n.views {
		delete(byOrigin, m.Name)
	}
	d.n.mu.Unlock()
	d.kick()
}

func (d *delegate) NotifyUpdate(*memberlist.Node) {}

func (d *delegate) kick() {
	select {
	case d.n.kick <- struct{}{}:
	default:
	}
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// viewBroadcast is one view on the gossip queue; a newer view of the same
// check by this member replaces it there.
type viewBroadcast struct {
	name string
	msg  []byte
}

func (b *viewBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*viewBroadcast)
	return ok && o.name == b.name
}
func (b *viewBroadcast) Name() string    { return b.name }
func (b *viewBroadcast) Message() []byte { return b.msg }
func (b *viewBroadcast) Finished()       {}
