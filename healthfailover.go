// Package healthfailover is a CoreDNS plugin that answers A, AAAA, CNAME,
// SRV, TXT and MX queries with healthy targets only, with Route 53's health
// checks and failover record sets.
package healthfailover

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/request"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/healthfailover/healthfailover/cluster"
	"github.com/miekg/dns"
)

const pluginName = "healthfailover"

// maxChase bounds how many CNAMEs of this plugin's own an answer follows.
const maxChase = 8

// HealthFailover is the handler. It reads answers, never computes them: the
// record table swaps in a new answer whenever a check changes health.
type HealthFailover struct {
	Next plugin.Handler

	zones   []string
	fall    fall.F
	table   *table
	soa     map[string]*dns.SOA // by zone
	ns      map[string][]dns.RR // the apex NS records, by zone; empty without `ns`
	nsNames []string
	parents map[string]bool // names that exist only as ancestors of defined ones
	// checks decide the health the answers follow. Without a cluster they
	// also probe; with one, probes only feeds the cluster, and checks
	// follow what the cluster agrees.
	checks, probes *checker.Checker
	cluster        *clusterConfig // nil without `cluster`
	node           *cluster.Node
	group          atomic.Pointer[cluster.Group] // set in OnStartup, read by /ready and /status
	status         string                        // address of the status endpoint, empty for none
	history        *probeHistory                 // each check's recent results, for the status page
	statusEntries  statusEntries
	overridePath   string // the override file, empty for none
	overrides      *overrideWatch
}

// Name implements plugin.Handler.
func (h *HealthFailover) Name() string { return pluginName }

// Ready implements ready.Readiness: true once every check has finished its
// first probe, so no query is answered from an empty view of health. In a
// cluster: once the member has joined (or given up for now, running alone)
// and has the agreed health of every check.
func (h *HealthFailover) Ready() bool {
	g := h.group.Load()
	return h.checks.Ready() && (h.cluster == nil || g != nil && g.Ready())
}

// CacheBypassZones implements cache.ZoneBypasser. It returns the record
// names, never the zones: as cluster DNS the zone may be ".", and bypassing
// it would switch the cache off for everything.
//
// The cache bypasses a name and every name below it. A wildcard's answers
// are owned by the names asked, not known in advance, so it is bypassed by
// the name it sits below (lb.example.org. for *.lb.example.org.): the
// wildcard answers every name there that no record defines, so nothing the
// cache could have served for another plugin is lost. Unless that name is
// a zone (*.example.org. in example.org.): then its answers may be cached,
// a limitation the README's Bugs states.
func (h *HealthFailover) CacheBypassZones() []string {
	names := make([]string, 0, len(h.table.byName)+len(h.table.wildcards))
	for name := range h.table.byName {
		names = append(names, name)
	}
	for parent := range h.table.wildcards {
		if !slices.Contains(h.zones, parent) {
			names = append(names, parent)
		}
	}
	return names
}

// ServeDNS implements plugin.Handler.
func (h *HealthFailover) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	if state.QClass() != dns.ClassINET {
		return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	}
	qname := state.Name()
	zone := matchZone(h.zones, qname)
	if zone == "" {
		return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	}
	qtype := state.QType()

	atName, defined := h.table.byName[qname]
	owner := "" // a wildcard's answers are owned by the name asked
	if !defined && len(h.table.wildcards) > 0 {
		if atName, defined = h.wildcard(qname, zone); defined {
			owner = qname
		}
	}
	if !defined && h.fall.Through(qname) {
		return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	}
	// A zone transfer or a NOTIFY is no query: answering it as one would
	// tell a secondary that the zone is empty. There is nothing to transfer.
	if r.Opcode != dns.OpcodeQuery || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		return dns.RcodeRefused, nil
	}

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true

	switch {
	case qname == zone && qtype == dns.TypeSOA:
		m.Answer = []dns.RR{h.soa[zone]}
	case qname == zone && qtype == dns.TypeNS && len(h.ns[zone]) > 0:
		m.Answer = h.ns[zone]
		m.Extra = h.glue(ctx)
	case !defined && (qname == zone || h.parents[qname]):
		// The name exists (the apex, or an ancestor of a defined name): NODATA.
	case !defined:
		m.Rcode = dns.RcodeNameError
	default:
		var servfail bool
		m.Answer, servfail = h.records(ctx, atName, qtype, owner)
		if servfail {
			return dns.RcodeServerFailure, nil
		}
		if qtype == dns.TypeSRV || qtype == dns.TypeMX || qtype == dns.TypeANY {
			m.Extra = h.additional(ctx, m.Answer)
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{h.soa[zone]}
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// records collects the RRs for the sets defined at a name, following CNAMEs
// to names this plugin also defines. A wildcard's RRs are copied with owner
// as their name; owner is empty for the sets of a name itself.
func (h *HealthFailover) records(ctx context.Context, atName nameSets, qtype uint16, owner string) ([]dns.RR, bool) {
	var rrs []dns.RR
	server := h.table.servers.id(metrics.WithServer(ctx))
	for range maxChase {
		if s := atName.cname; s != nil {
			a := s.current.Load()
			s.counts.add(server, a.tier)
			if a.servfail {
				return rrs, len(rrs) == 0
			}
			rr := a.one(rand.Uint32())
			if rr == nil {
				return rrs, false
			}
			if rrs == nil {
				rrs = make([]dns.RR, 0, 1+maxAnswers)
			}
			rrs = append(rrs, rr)
			if owner != "" {
				withOwner(rrs[len(rrs)-1:], owner)
				owner = "" // the target is a name of its own
			}
			if qtype == dns.TypeCNAME {
				return rrs, false
			}
			var ok bool
			if atName, ok = h.table.byName[rr.(*dns.CNAME).Target]; !ok {
				return rrs, false
			}
			continue
		}
		// Load each answer once: its size and its records come from the
		// same snapshot even if a transition swaps a new one in meanwhile.
		var snaps [2]*snapshot
		need := 0
		for i, s := range h.setsFor(atName, qtype) {
			if s != nil {
				snaps[i] = s.current.Load()
				s.counts.add(server, snaps[i].tier)
				need += snaps[i].size
			}
		}
		if cap(rrs)-len(rrs) < need {
			rrs = append(make([]dns.RR, 0, len(rrs)+need), rrs...)
		}
		servfail := false
		for _, a := range snaps {
			if a != nil {
				servfail = servfail || a.servfail
				start := len(rrs)
				rrs = a.appendTo(rrs, rand.Uint32())
				if owner != "" {
					withOwner(rrs[start:], owner)
				}
			}
		}
		return rrs, servfail && len(rrs) == 0
	}
	return rrs, false
}

// glue returns the addresses of the name servers that this plugin defines
// itself, for the additional section of an NS answer.
func (h *HealthFailover) glue(ctx context.Context) []dns.RR {
	var extra []dns.RR
	for _, ns := range h.nsNames {
		if atName, ok := h.table.byName[ns]; ok && atName.cname == nil {
			rrs, _ := h.records(ctx, atName.addresses(), dns.TypeANY, "")
			extra = append(extra, rrs...)
		}
	}
	return extra
}

// additional returns the addresses of the SRV and MX targets of an answer
// that this plugin defines, a wildcard's included, for the additional
// section: the client needs no second query.
func (h *HealthFailover) additional(ctx context.Context, answer []dns.RR) []dns.RR {
	var extra []dns.RR
	for i, rr := range answer {
		target := hostOf(rr)
		if target == "" || slices.ContainsFunc(answer[:i], func(x dns.RR) bool { return hostOf(x) == target }) {
			continue
		}
		atName, owner, ok := h.lookup(target)
		if !ok {
			continue
		}
		rrs, _ := h.records(ctx, atName.addresses(), dns.TypeANY, owner)
		if extra == nil {
			extra = rrs // most answers name one target: no copy
		} else {
			extra = append(extra, rrs...)
		}
	}
	return extra
}

// hostOf is the host an SRV or MX record names; "" for other types.
func hostOf(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.SRV:
		return rr.Target
	case *dns.MX:
		return rr.Mx
	}
	return ""
}

// lookup finds the sets that answer a name: its own, or a wildcard's, when
// owner is the name. ok is false outside the zones or for no such name.
func (h *HealthFailover) lookup(name string) (sets nameSets, owner string, ok bool) {
	zone := matchZone(h.zones, name)
	if zone == "" {
		return nameSets{}, "", false
	}
	if sets, ok := h.table.byName[name]; ok {
		return sets, "", true
	}
	if sets, ok := h.wildcard(name, zone); ok {
		return sets, name, true
	}
	return nameSets{}, "", false
}

// wildcard finds the wildcard that answers a name the plugin does not
// define (RFC 4592): the one below the name's closest encloser, its nearest
// ancestor that exists. A name that exists (the apex, an empty non-terminal)
// gets none, nor does a name below one without a wildcard of its own.
func (h *HealthFailover) wildcard(qname, zone string) (nameSets, bool) {
	if qname == zone || h.parents[qname] {
		return nameSets{}, false
	}
	for p := qname; len(p) > len(zone); {
		if p = parentName(p); p == "" {
			p = "."
		}
		if sets, ok := h.table.wildcards[p]; ok {
			return sets, true
		}
		if p == zone {
			break // the apex exists; the loop ends here anyway
		}
		if _, ok := h.table.byName[p]; ok || h.parents[p] {
			return nameSets{}, false
		}
	}
	return nameSets{}, false
}

// setsFor returns the sets that answer a query type at a name: ANY gets both
// address families or, at a name without addresses, one of its other sets
// (RFC 8482: one RRset is answer enough). It returns an array, not a slice,
// to keep the query path free of allocations.
func (h *HealthFailover) setsFor(n nameSets, qtype uint16) [2]*recordSet {
	switch qtype {
	case dns.TypeA:
		return [2]*recordSet{n.a}
	case dns.TypeAAAA:
		return [2]*recordSet{n.aaaa}
	case dns.TypeSRV, dns.TypeTXT, dns.TypeMX:
		return [2]*recordSet{n.other(qtype)}
	case dns.TypeANY:
		if n.a == nil && n.aaaa == nil {
			return [2]*recordSet{cmp.Or(n.other(dns.TypeSRV), n.other(dns.TypeMX), n.other(dns.TypeTXT))}
		}
		return [2]*recordSet{n.a, n.aaaa}
	}
	return [2]*recordSet{}
}

// matchZone returns the longest zone that contains qname (both lower case
// and fully qualified), or "". It is plugin.Zones.Matches without the
// allocations of splitting names into labels.
func matchZone(zones []string, qname string) string {
	best := ""
	for _, z := range zones {
		if len(z) <= len(best) {
			continue
		}
		if z == "." || qname == z || (strings.HasSuffix(qname, z) && qname[len(qname)-len(z)-1] == '.') {
			best = z
		}
	}
	return best
}
