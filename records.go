package healthfailover

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// maxAnswers caps a multivalue answer, as Route 53 does.
const maxAnswers = 8

// recordSet is a record set with its members resolved to RRs. Its current
// answer is an immutable snapshot, swapped atomically whenever the health
// of something it depends on changes; the query path only loads it.
type recordSet struct {
	// The query path reads current and adds to counts, and nothing else:
	// they come first, so that both usually share one cache line.
	current atomic.Pointer[snapshot]
	counts  answerCounts

	name  string
	qtype uint16
	ttl   uint32
	// degradedTTL is the TTL of the answers while the set does not answer
	// with every member of its first tier healthy: clients come back soon
	// after the failback. It is the ttl unless degraded_ttl says otherwise.
	degradedTTL uint32
	onAllDown   allDownPolicy
	members     []member // sorted by tier
	weighted    bool

	// aliasedBy are the sets with an alias member pointing here: they are
	// rebuilt after this one.
	aliasedBy []*recordSet
	// order places alias targets before the sets aliasing them.
	order int
}

// member is one value of a set: a plain RR or an alias of another set.
type member struct {
	tier int
	rr   dns.RR // with the set's name and TTL; nil for an alias
	// degradedRR is rr with the set's degraded TTL (rr itself when the two
	// TTLs are the same): made once, so that a rebuild copies nothing.
	degradedRR dns.RR
	alias      *recordSet
	check      string
	weight     int
	// value is how a drain names the member: its canonical value, or
	// "alias NAME" (fully qualified).
	value string
}

// snapshot is what a set answers right now: immutable, replaced whole.
type snapshot struct {
	tier           int // the tier serving; 0 when no member is healthy
	healthyMembers int // across all tiers
	servfail       bool
	// degraded: not every member of the first tier is healthy (or an
	// alias answering is degraded); the RRs then carry the degraded TTL.
	degraded   bool
	ttl        uint32
	drained    []string // values drained by an override, in member order
	choices    []choice
	cumWeights []int // nil unless the set is weighted
	// size is the most RRs appendTo adds, to size the reply once.
	size int
}

// choice is one candidate of an answer: an RR, or the answer of an aliased
// set already renamed to this set's name.
type choice struct {
	rr     dns.RR
	nested *snapshot
}

// healthFunc tells whether a check is healthy.
type healthFunc func(check string) bool

// appendTo appends the RRs of one query's answer: every candidate (at most
// maxAnswers, rotated by rot) or, when weighted, one drawn by weight. The
// rotation is random per query rather than a shared counter, which every
// core would fight over.
func (a *snapshot) appendTo(dst []dns.RR, rot uint32) []dns.RR {
	if len(a.choices) == 0 {
		return dst
	}
	if a.cumWeights != nil {
		return a.choices[a.draw()].appendTo(dst, rot)
	}
	start := len(dst)
	for _, c := range a.choices {
		dst = c.appendTo(dst, rot)
	}
	got := dst[start:]
	if n := len(got); n > 1 {
		rotate(got, int(rot%uint32(n)))
	}
	if len(got) > maxAnswers {
		dst = dst[:start+maxAnswers]
	}
	return dst
}

// one returns a single RR, for CNAME sets: a name has one CNAME.
func (a *snapshot) one(rot uint32) dns.RR {
	if len(a.choices) == 0 {
		return nil
	}
	i := int(rot % uint32(len(a.choices)))
	if a.cumWeights != nil {
		i = a.draw()
	}
	c := a.choices[i]
	if c.nested != nil {
		return c.nested.one(rot)
	}
	return c.rr
}

func (a *snapshot) draw() int {
	total := a.cumWeights[len(a.cumWeights)-1]
	x := rand.IntN(total)
	return sort.SearchInts(a.cumWeights, x+1)
}

func (c choice) appendTo(dst []dns.RR, rot uint32) []dns.RR {
	if c.nested != nil {
		return c.nested.appendTo(dst, rot)
	}
	return append(dst, c.rr)
}

func rotate(rrs []dns.RR, k int) {
	if k == 0 {
		return
	}
	reverse(rrs[:k])
	reverse(rrs[k:])
	reverse(rrs)
}

func reverse(rrs []dns.RR) {
	for i, j := 0, len(rrs)-1; i < j; i, j = i+1, j-1 {
		rrs[i], rrs[j] = rrs[j], rrs[i]
	}
}

// healthy reports whether a member may answer: its check passes and, for an
// alias, the aliased set has a healthy member (Route 53's "evaluate target health").
func (m member) healthy(health healthFunc) bool {
	if m.check != "" && !health(m.check) {
		return false
	}
	return m.alias == nil || m.alias.current.Load().tier > 0
}

// build computes the set's answer from the health of its members; a
// drained member counts as unhealthy.
func (s *recordSet) build(health healthFunc, drained map[string]drain) *snapshot {
	a := &snapshot{}
	var serving []member
	firstTier, firstHealthy := s.members[0].tier, true
	for _, m := range s.members {
		if _, ok := drained[m.value]; ok {
			if !slices.Contains(a.drained, m.value) {
				a.drained = append(a.drained, m.value)
			}
			firstHealthy = firstHealthy && m.tier != firstTier
			continue
		}
		if !m.healthy(health) {
			firstHealthy = firstHealthy && m.tier != firstTier
			continue
		}
		a.healthyMembers++
		if a.tier == 0 {
			a.tier = m.tier
		}
		if m.tier == a.tier {
			serving = append(serving, m)
		}
	}
	a.degraded = a.tier != firstTier || !firstHealthy
	if a.tier == 0 {
		switch s.onAllDown {
		case allDownNodata:
			return a
		case allDownServfail:
			a.servfail = true
			return a
		}
		// Fail open: answer with the first tier as if it were healthy.
		for _, m := range s.members {
			if m.tier == s.members[0].tier {
				serving = append(serving, m)
			}
		}
	}
	// Writers are serialised: an aliased set's answer does not change
	// while this one is built.
	for _, m := range serving {
		if m.alias != nil && m.alias.current.Load().degraded {
			a.degraded = true
		}
	}
	a.ttl = s.ttl
	if a.degraded {
		a.ttl = s.degradedTTL
	}
	for _, m := range serving {
		c := choice{rr: m.rr}
		switch {
		case m.alias != nil:
			c = choice{nested: m.alias.current.Load().renamed(s.name, a.ttl)}
		case a.degraded:
			c = choice{rr: m.degradedRR}
		}
		a.choices = append(a.choices, c)
	}
	if s.weighted {
		a.cumWeights = cumulativeWeights(serving)
	}
	a.size = a.maxSize()
	return a
}

func (a *snapshot) maxSize() int {
	size := 0
	for _, c := range a.choices {
		n := 1
		if c.nested != nil {
			n = c.nested.size
		}
		if a.cumWeights != nil {
			size = max(size, n)
		} else {
			size += n
		}
	}
	return min(size, maxAnswers)
}

// cumulativeWeights draws among members of weight above zero; members of
// weight zero answer only when no weighted member is healthy (Route 53).
func cumulativeWeights(serving []member) []int {
	if len(serving) == 0 {
		return nil
	}
	positive := false
	for _, m := range serving {
		positive = positive || m.weight > 0
	}
	cum := make([]int, len(serving))
	total := 0
	for i, m := range serving {
		switch {
		case !positive:
			total++
		case m.weight > 0:
			total += m.weight
		}
		cum[i] = total
	}
	return cum
}

// renamed returns a copy of the answer under another name and TTL, for the
// sets that alias it.
func (a *snapshot) renamed(name string, ttl uint32) *snapshot {
	b := *a
	b.choices = make([]choice, len(a.choices))
	for i, c := range a.choices {
		if c.nested != nil {
			b.choices[i] = choice{nested: c.nested.renamed(name, ttl)}
			continue
		}
		rr := dns.Copy(c.rr)
		rr.Header().Name, rr.Header().Ttl = name, ttl
		b.choices[i] = choice{rr: rr}
	}
	return &b
}

// newRR makes the RR of a plain member from its canonical value.
func newRR(name string, qtype uint16, ttl uint32, value string) dns.RR {
	hdr := dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
	switch qtype {
	case dns.TypeA:
		return &dns.A{Hdr: hdr, A: net.ParseIP(value).To4()}
	case dns.TypeAAAA:
		return &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(value)}
	case dns.TypeCNAME:
		return &dns.CNAME{Hdr: hdr, Target: value}
	}
	// SRV, MX, TXT: the value is the data as the RR prints it, which its
	// parser reads back. The owner is set afterwards: a name may hold
	// characters (such as ;) that the zone file syntax would not read.
	rr, err := dns.NewRR(". IN " + dns.TypeToString[qtype] + " " + value)
	if err != nil || rr == nil {
		panic(fmt.Sprintf("healthfailover: the canonical value %q of %s %s does not read back: %v", value, name, dns.TypeToString[qtype], err))
	}
	*rr.Header() = hdr
	return rr
}

// rrData is an RR's data as dig prints it: 192.0.2.1, 10 5 443
// www.example.org., or a TXT string in its quotes. It names members in
// drains and the status document.
func rrData(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// withOwner replaces rrs, all of one type, by copies owned by name, for the
// answer of a wildcard: the copies share one allocation, and the snapshot's
// RRs are never changed.
func withOwner(rrs []dns.RR, name string) {
	if len(rrs) == 0 {
		return
	}
	switch rrs[0].(type) {
	case *dns.A:
		ownedCopies[dns.A](rrs, name)
	case *dns.AAAA:
		ownedCopies[dns.AAAA](rrs, name)
	case *dns.CNAME:
		ownedCopies[dns.CNAME](rrs, name)
	case *dns.SRV:
		ownedCopies[dns.SRV](rrs, name)
	case *dns.MX:
		ownedCopies[dns.MX](rrs, name)
	case *dns.TXT:
		ownedCopies[dns.TXT](rrs, name)
	}
}

func ownedCopies[T any, P interface {
	*T
	dns.RR
}](rrs []dns.RR, name string) {
	copies := make([]T, len(rrs))
	for i, rr := range rrs {
		copies[i] = *rr.(P)
		P(&copies[i]).Header().Name = name
		rrs[i] = P(&copies[i])
	}
}

// table holds every record set of a block and rebuilds answers on health
// changes. Writers are serialised; readers never lock.
type table struct {
	byName map[string]nameSets // immutable after newTable; wildcards by their own name
	// wildcards are the sets of wildcard names, by the name below which
	// they answer ("example.org." for *.example.org.).
	wildcards map[string]nameSets
	sets      []*recordSet // in dependency order: alias targets first
	byCheck   map[string][]*recordSet
	health    healthFunc
	// block labels the table's metrics: the server block it serves.
	block string

	mu sync.Mutex // serialises rebuilds
	// drained are the members an override drains, by set and value;
	// guarded by mu.
	drained map[*recordSet]map[string]drain
	// onChange, when set, is told of every answer swapped in.
	onChange func(*recordSet, *snapshot)

	// servers number the servers that ask, for the sets' answer counts.
	servers serverIDs
}

// nameSets are the sets defined at one name. The types asked most are
// kept in place and the others behind a pointer: the value sits in the
// map the query path reads, and a smaller one touches less memory.
type nameSets struct {
	a, aaaa, cname *recordSet
	more           *moreSets // nil while the name has none
}

type moreSets struct {
	srv, txt, mx *recordSet
}

// slot is where a name keeps its set of a type.
func (n *nameSets) slot(qtype uint16) **recordSet {
	switch qtype {
	case dns.TypeA:
		return &n.a
	case dns.TypeAAAA:
		return &n.aaaa
	case dns.TypeCNAME:
		return &n.cname
	}
	if n.more == nil {
		n.more = &moreSets{}
	}
	switch qtype {
	case dns.TypeSRV:
		return &n.more.srv
	case dns.TypeTXT:
		return &n.more.txt
	case dns.TypeMX:
		return &n.more.mx
	}
	return nil
}

// other is the name's SRV, TXT or MX set, nil for none.
func (n nameSets) other(qtype uint16) *recordSet {
	if n.more == nil {
		return nil
	}
	switch qtype {
	case dns.TypeSRV:
		return n.more.srv
	case dns.TypeTXT:
		return n.more.txt
	case dns.TypeMX:
		return n.more.mx
	}
	return nil
}

// addresses are the name's address sets only: glue and the additional
// section of SRV and MX answers.
func (n nameSets) addresses() nameSets { return nameSets{a: n.a, aaaa: n.aaaa} }

// newTable resolves a validated configuration's record sets.
func newTable(specs []*setSpec, health healthFunc) *table {
	t := &table{byName: map[string]nameSets{}, wildcards: map[string]nameSets{}, byCheck: map[string][]*recordSet{}, health: health}
	type key struct {
		name  string
		qtype uint16
	}
	byKey := map[key]*recordSet{}
	for _, spec := range specs {
		s := &recordSet{name: spec.name, qtype: spec.qtype, ttl: spec.ttl, degradedTTL: spec.ttl, onAllDown: spec.onAllDown}
		if spec.degradedTTL != nil {
			s.degradedTTL = *spec.degradedTTL
		}
		byKey[key{spec.name, spec.qtype}] = s
		n := t.byName[spec.name]
		*n.slot(spec.qtype) = s
		t.byName[spec.name] = n
		if parent, ok := strings.CutPrefix(spec.name, "*."); ok {
			t.wildcards[parent] = n
		}
	}
	for _, spec := range specs {
		s := byKey[key{spec.name, spec.qtype}]
		for _, ms := range spec.members {
			m := member{tier: ms.tier, check: ms.check, weight: ms.weight, value: ms.value}
			if ms.alias != "" {
				m.value = "alias " + ms.alias
				m.alias = byKey[key{ms.alias, spec.qtype}]
				m.alias.aliasedBy = append(m.alias.aliasedBy, s)
			} else {
				m.rr = newRR(s.name, s.qtype, s.ttl, ms.value)
				m.degradedRR = m.rr
				if s.degradedTTL != s.ttl {
					m.degradedRR = dns.Copy(m.rr)
					m.degradedRR.Header().Ttl = s.degradedTTL
				}
			}
			if ms.check != "" && !containsSet(t.byCheck[ms.check], s) {
				t.byCheck[ms.check] = append(t.byCheck[ms.check], s)
			}
			s.weighted = s.weighted || ms.weight >= 0
			s.members = append(s.members, m)
		}
		sort.SliceStable(s.members, func(i, j int) bool { return s.members[i].tier < s.members[j].tier })
	}
	t.sets = dependencyOrder(byKey)
	t.rebuildAll()
	return t
}

func containsSet(sets []*recordSet, s *recordSet) bool {
	for _, x := range sets {
		if x == s {
			return true
		}
	}
	return false
}

// dependencyOrder sorts sets so that every alias target comes before the
// sets aliasing it (the configuration has no alias cycle).
func dependencyOrder[K comparable](byKey map[K]*recordSet) []*recordSet {
	var order []*recordSet
	seen := map[*recordSet]bool{}
	var visit func(*recordSet)
	visit = func(s *recordSet) {
		if seen[s] {
			return
		}
		seen[s] = true
		for _, m := range s.members {
			if m.alias != nil {
				visit(m.alias)
			}
		}
		s.order = len(order)
		order = append(order, s)
	}
	all := make([]*recordSet, 0, len(byKey))
	for _, s := range byKey {
		all = append(all, s)
	}
	// Deterministic order for equal inputs.
	sort.Slice(all, func(i, j int) bool {
		if all[i].name != all[j].name {
			return all[i].name < all[j].name
		}
		return all[i].qtype < all[j].qtype
	})
	for _, s := range all {
		visit(s)
	}
	return order
}

func (t *table) rebuildAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.sets {
		t.swap(s)
	}
}

// checkChanged rebuilds only the sets that depend on a check, directly or
// through aliases: one transition costs microseconds however many sets exist.
func (t *table) checkChanged(check string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rebuild(t.byCheck[check])
}

// rebuild rebuilds sets and every set aliasing one of them. t.mu is held.
func (t *table) rebuild(sets []*recordSet) {
	seen := map[*recordSet]bool{}
	affected := append([]*recordSet{}, sets...)
	for _, s := range affected {
		seen[s] = true
	}
	for i := 0; i < len(affected); i++ {
		for _, parent := range affected[i].aliasedBy {
			if !seen[parent] {
				seen[parent] = true
				affected = append(affected, parent)
			}
		}
	}
	// Rebuild in dependency order, so an aliasing set sees its target's new answer.
	sort.Slice(affected, func(i, j int) bool { return affected[i].order < affected[j].order })
	for _, s := range affected {
		t.swap(s)
	}
}

func (t *table) swap(s *recordSet) {
	a := s.build(t.health, t.drained[s])
	s.current.Store(a)
	if t.onChange != nil {
		t.onChange(s, a)
	}
}
