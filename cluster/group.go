package cluster

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Group is one server block's checks in the cluster: it publishes this
// member's views of the checks it observes, and derives every check's
// agreed health from the fresh views of its observers.
type Group struct {
	node      *Node
	observers int
	quorum    int
	onAgreed  func(check string, a Agreed)

	byName map[string]*groupCheck
	byKey  map[string]*groupCheck
	order  []*groupCheck

	// mu serialises evaluations, so that onAgreed sees every check's
	// agreements in the order they were made.
	mu     sync.Mutex
	closed bool
}

// GroupConfig is a server block's part of the cluster.
type GroupConfig struct {
	Observers int // members that probe each check
	Quorum    int // percent: healthy while more than this share of fresh views says so
	Checks    []Check
}

// Check is one check the cluster shares.
type Check struct {
	Name string
	// Key identifies the check across members; see View.Check.
	Key string
	// Interval is how often its observers probe; a view is fresh for a
	// few intervals.
	Interval time.Duration
}

type groupCheck struct {
	Check
	staleAfter time.Duration
	// probe is whether this member should probe the check now: it is one
	// of its observers, or no observer has a fresh view.
	probe  atomic.Bool
	agreed Agreed
	known  bool // agreed holds a decision

	// observers are the check's observers among the members of epoch:
	// worked out again only when membership changes. Guarded by Group.mu.
	observers []string
	epoch     uint64
	counted   []Observation // reused by evaluate
}

// Agreed is a check's health as this member derives it from the views of
// the check's observers.
type Agreed struct {
	Healthy bool
	// Views is how many fresh views were counted, Healthy how many of them
	// said healthy; Observers is how many observers the check has now.
	Views, HealthyViews, Observers int
	// Message says why, for the log and the status page.
	Message string
	Reason  string
}

// staleAfter is how long a view counts without being refreshed: three
// probes missed, and never less than the gossip needs to bring a refresh.
func staleAfter(interval time.Duration) time.Duration {
	return max(3*interval+2*time.Second, 5*time.Second)
}

// NewGroup joins a block's checks to the node. onAgreed is called, one
// call at a time, whenever a check's agreed health or its counts change;
// it must not call back into the Group. Nothing is decided before the
// first views: Ready tells when every check has one.
func (n *Node) NewGroup(cfg GroupConfig, onAgreed func(check string, a Agreed)) *Group {
	g := &Group{node: n, observers: cfg.Observers, quorum: cfg.Quorum, onAgreed: onAgreed,
		byName: map[string]*groupCheck{}, byKey: map[string]*groupCheck{}}
	for _, c := range cfg.Checks {
		gc := &groupCheck{Check: c, staleAfter: staleAfter(c.Interval)}
		g.byName[c.Name] = gc
		g.byKey[c.Key] = gc
		g.order = append(g.order, gc)
	}
	n.register(g)
	g.evaluateAll()
	return g
}

// Close detaches the group from the node; its views stay with the node,
// for the next configuration's group.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.node.unregister(g)
}

// Probes reports whether this member should probe the check now. It is
// cheap: the prober asks before every probe.
func (g *Group) Probes(check string) bool {
	gc, ok := g.byName[check]
	return !ok || gc.probe.Load()
}

// Publish is this member's view of a check after a probe of its own: its
// health by its own thresholds, since when, and the last probe's reason.
func (g *Group) Publish(check string, healthy bool, since time.Time, reason, message string) {
	gc, ok := g.byName[check]
	if !ok {
		return
	}
	g.node.publish(View{Check: gc.Key, Healthy: healthy, Since: since, Reason: reason, Message: message})
	g.evaluate(gc)
}

// Ready reports whether the node has settled and every check has a decision.
func (g *Group) Ready() bool {
	if !g.node.Settled() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, gc := range g.order {
		if !gc.known {
			return false
		}
	}
	return true
}

// Observations returns, for the status page, the check's observers and
// every view held of it, oldest member name first.
func (g *Group) Observations(check string) (observers []string, views []Observation) {
	gc, ok := g.byName[check]
	if !ok {
		return nil, nil
	}
	members := g.node.Members()
	observers = observersOf(gc.Key, members, g.observers)
	now := time.Now()
	for _, o := range g.node.observations(gc.Key, now) {
		o.Observer = slices.Contains(observers, o.Member)
		o.Fresh = o.Age <= gc.staleAfter && slices.Contains(members, o.Member)
		views = append(views, o)
	}
	slices.SortFunc(views, func(a, b Observation) int { return compareStrings(a.Member, b.Member) })
	return observers, views
}

// Observation is one member's view of a check as this member holds it.
type Observation struct {
	Member   string
	Observer bool // the member is one of the check's observers now
	Fresh    bool // the view counts
	Healthy  bool
	Since    time.Time
	Reason   string
	Message  string
	Age      time.Duration
}

func (g *Group) evaluateAll() {
	for _, gc := range g.order {
		g.evaluate(gc)
	}
}

func (g *Group) evaluateKeys(keys []string) {
	for _, k := range keys {
		if gc := g.byKey[k]; gc != nil {
			g.evaluate(gc)
		}
	}
}

// evaluate derives a check's health from the fresh views of its current
// observers: healthy while more than quorum percent of them say so. With
// no fresh view of an observer (they are gone, or new and not probed yet)
// it takes any fresh view, and this member probes the check itself: it
// never answers from nothing.
func (g *Group) evaluate(gc *groupCheck) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	now := time.Now()
	members, epoch := g.node.membership()
	if gc.observers == nil || gc.epoch != epoch {
		gc.observers, gc.epoch = observersOf(gc.Key, members, g.observers), epoch
	}
	counted := g.node.freshViews(gc.counted[:0], gc.Key, gc.observers, gc.staleAfter, now)
	self := slices.Contains(gc.observers, g.node.name)
	gc.probe.Store(self || len(counted) == 0)
	if len(counted) == 0 {
		counted = g.node.freshViews(counted, gc.Key, members, gc.staleAfter, now)
	}
	gc.counted = counted
	if len(counted) == 0 {
		return // nothing known yet: keep the last decision, or none
	}

	a := count(counted, g.quorum)
	a.Observers = len(gc.observers)
	if gc.known && a.Healthy == gc.agreed.Healthy && a.Views == gc.agreed.Views && a.HealthyViews == gc.agreed.HealthyViews && a.Observers == gc.agreed.Observers {
		return
	}
	a.explain(counted, g.quorum)
	gc.agreed, gc.known = a, true
	g.onAgreed(gc.Name, a)
}

// count counts views: healthy while more than quorum percent say healthy.
func count(views []Observation, quorum int) Agreed {
	a := Agreed{Views: len(views)}
	for _, v := range views {
		if v.Healthy {
			a.HealthyViews++
		}
	}
	a.Healthy = a.HealthyViews*100 > quorum*a.Views
	return a
}

// explain says why, naming a view that agrees with the outcome.
func (a *Agreed) explain(views []Observation, quorum int) {
	for _, v := range views {
		if v.Healthy == a.Healthy {
			a.Reason = v.Reason
			a.Message = fmt.Sprintf("%d of %d views healthy, more than %d%% needed; %s: %s", a.HealthyViews, a.Views, quorum, v.Member, v.Message)
			return
		}
	}
}
