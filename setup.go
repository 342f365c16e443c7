package healthfailover

import (
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/healthfailover/healthfailover/cluster"
	"github.com/miekg/dns"
)

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

// running hands check state from one configuration to the next on reload:
// the checkers of each server block, by the block's keys with their ports
// (example.org:1301 and example.org:1302 have the same zones but are two
// blocks with health of their own). It is the only mutable package state
// besides the metrics and the gossip nodes (cluster_setup.go).
var running = struct {
	sync.Mutex
	byKey map[string]handover
}{byKey: map[string]handover{}}

// handover is what a block's next configuration takes over: the health
// its answers follow, and the checker that probes (the same one without
// a cluster).
type handover struct {
	health, probes *checker.Checker
}

func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	h, err := newHandler(cfg)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	key := cfg.block

	// Nothing starts before OnStartup: if another directive's setup fails,
	// this instance is dropped and its OnShutdown never runs.
	c.OnStartup(func() error {
		running.Lock()
		prev := running.byKey[key]
		running.byKey[key] = handover{health: h.checks, probes: h.probes}
		running.Unlock()
		if err := h.start(prev); err != nil {
			return plugin.Error(pluginName, err)
		}
		answersTotal.start(h.table)
		return h.startStatus()
	})
	// The status listener moves from the old instance to the new one on
	// reload, as the health plugin's does; the blocks that name one status
	// address share its listener (status_listener.go).
	c.OnRestart(h.stopStatus)
	c.OnRestartFailed(h.startStatus)
	c.OnShutdown(func() error {
		running.Lock()
		if running.byKey[key].health == h.checks {
			delete(running.byKey, key)
		}
		running.Unlock()
		h.stop()
		answersTotal.retire(h.table)
		return h.stopStatus()
	})

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// start starts the checks, taking over prev's state. Without a cluster,
// one checker probes and decides; with one, the node is joined first, so
// that this member probes only the checks it observes, and the health the
// answers follow is what the cluster agrees.
func (h *HealthFailover) start(prev handover) error {
	// Overrides apply before the first answer. Start hands over the previous
	// configuration's state, overrides included, so they apply once more
	// after it: the file may have changed in between.
	h.startOverrides()
	defer h.reapplyOverrides()
	if h.cluster == nil {
		h.checks.Start(prev.health)
		return nil
	}
	node, err := acquireNode(h.cluster.node)
	if err != nil {
		return err
	}
	h.node = node
	h.checks.Start(prev.health)
	h.group.Store(node.NewGroup(cluster.GroupConfig{Observers: h.cluster.observers, Quorum: h.cluster.quorum,
		Checks: clusterChecks(h.table.block, h.probes.Specs())}, h.agreed))
	h.probes.Start(prev.probes)
	return nil
}

// stop stops what start started; it may be called more than once.
func (h *HealthFailover) stop() {
	h.stopOverrides()
	if g := h.group.Load(); g != nil {
		g.Close()
	}
	if h.probes != h.checks {
		h.probes.Stop()
	}
	h.checks.Stop()
	if h.node != nil {
		releaseNode(h.node)
		h.node = nil
	}
}

// newHandler wires a parsed configuration: checks, record table, metrics
// and transition logs. It starts nothing.
func newHandler(cfg *config) (*HealthFailover, error) {
	block := cfg.block
	history := newProbeHistory(cfg.checks)
	onResult := func(check string, r checker.Result) {
		observeProbe(block, check, r)
		history.record(check, r)
	}
	checks, err := checker.New(cfg.checks, checker.Options{OnResult: onResult, External: cfg.cluster != nil})
	if err != nil {
		return nil, err
	}
	h := newAnswerer(cfg, checks.Healthy)
	h.checks, h.probes = checks, checks
	h.history = history
	if cfg.cluster != nil {
		h.cluster = cfg.cluster
		h.probes, err = newProbes(h, cfg.checks)
		if err != nil {
			return nil, err
		}
	}
	h.table.onChange = func(s *recordSet, a *snapshot) { observeAnswer(block, s, a) }
	for _, s := range h.table.sets {
		observeAnswer(block, s, s.current.Load())
	}
	for _, st := range checks.Snapshot() {
		observeState(block, st)
	}
	checks.Subscribe(func(t checker.Transition) {
		// Health carried over from the previous configuration changes
		// the answers but is no new transition to log or count. An
		// override's change is logged where it is read, with its line.
		if !t.Inherited {
			if t.Reason != checker.ReasonOverride {
				log.Infof("%s: check %s: %s -> %s (%s)", block, t.Check, healthWord(t.From), healthWord(t.To), t.Message)
			}
			observeTransition(block, t)
		}
		observeState(block, t.State)
		h.table.checkChanged(t.Check)
	})
	return h, nil
}

// newAnswerer builds the DNS side of a configuration over a source of health.
func newAnswerer(cfg *config, health healthFunc) *HealthFailover {
	h := &HealthFailover{
		zones:        cfg.zones,
		fall:         cfg.fall,
		soa:          map[string]*dns.SOA{},
		parents:      map[string]bool{},
		status:       cfg.status,
		overridePath: cfg.override,
		table:        newTable(cfg.sets, health),
	}
	h.table.block = cfg.block
	serial := cfg.serial()
	h.ns, h.nsNames = map[string][]dns.RR{}, cfg.ns
	for _, z := range cfg.zones {
		h.soa[z] = newSOA(z, cfg.ns, serial)
		for _, ns := range cfg.ns {
			h.ns[z] = append(h.ns[z], &dns.NS{Hdr: dns.RR_Header{Name: z, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: nsTTL}, Ns: ns})
		}
	}
	for name := range h.table.byName {
		zone := plugin.Zones(cfg.zones).Matches(name)
		for p := parentName(name); p != "" && len(p) > len(zone); p = parentName(p) {
			h.parents[p] = true
		}
	}
	return h
}

func healthWord(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "unhealthy"
}

func parentName(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// nsTTL is the TTL of the apex NS records: the name servers do not fail
// over, so resolvers may keep them longer than the answers.
const nsTTL = 3600

// newSOA makes the zone's SOA, carried by negative answers so that
// resolvers cache them for a short, known time. Its MNAME is the first
// name server of `ns`, or a made-up name without it.
func newSOA(zone string, nameServers []string, serial uint32) *dns.SOA {
	ns := "ns.dns." + zone
	mbox := "hostmaster." + zone
	if zone == "." {
		ns, mbox = "ns.dns.", "hostmaster."
	}
	if len(nameServers) > 0 {
		ns = nameServers[0]
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: defaultTTL},
		Ns:      ns,
		Mbox:    mbox,
		Serial:  serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  defaultTTL,
	}
}
