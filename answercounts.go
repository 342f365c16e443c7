package healthfailover

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// answers_total is counted in the record sets' own memory rather than in a
// CounterVec. A query has just read its set, so counting there costs no
// cache miss; a CounterVec child is a heap object of its own behind a label
// look-up, and with thousands of sets asked in turn that cost one or two
// cache misses a query, a fifth of the query path. The counts are exported
// by answersTotal, which adds them up at scrape time.

// inlineServers is how many servers a set counts in place; a plugin
// instance serves more only when its server block has more keys.
const inlineServers = 2

// tierCounts are a set's answers at one server, by the tier that served.
type tierCounts [maxTier + 1]atomic.Uint64

// answerCounts counts one record set's answers by server and tier.
type answerCounts struct {
	inline [inlineServers]tierCounts
	// more holds the servers past inlineServers: copy-on-write, so the
	// query path takes no lock.
	more atomic.Pointer[map[int]*tierCounts]
	mu   sync.Mutex
}

func (c *answerCounts) add(server, tier int) {
	if server < inlineServers {
		c.inline[server][tier].Add(1)
		return
	}
	c.server(server)[tier].Add(1)
}

func (c *answerCounts) server(server int) *tierCounts {
	if m := c.more.Load(); m != nil {
		if t, ok := (*m)[server]; ok {
			return t
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[int]*tierCounts{}
	if m := c.more.Load(); m != nil {
		maps.Copy(next, *m)
	}
	t, ok := next[server]
	if !ok {
		t = new(tierCounts)
		next[server] = t
		c.more.Store(&next)
	}
	return t
}

// each calls f with every count above zero.
func (c *answerCounts) each(f func(server, tier int, n uint64)) {
	visit := func(server int, t *tierCounts) {
		for tier := range t {
			if n := t[tier].Load(); n > 0 {
				f(server, tier, n)
			}
		}
	}
	for server := range c.inline {
		visit(server, &c.inline[server])
	}
	if m := c.more.Load(); m != nil {
		for server, t := range *m {
			visit(server, t)
		}
	}
}

// serverIDs numbers the servers (metrics.WithServer) a table answers for,
// so a set's counts are indexed by a small number instead of a string. The
// list is copy-on-write and short: finding a server is a scan of a few
// strings that are usually the very same string.
type serverIDs struct {
	names atomic.Pointer[[]string]
	mu    sync.Mutex
}

func (s *serverIDs) id(server string) int {
	if p := s.names.Load(); p != nil {
		for i, name := range *p {
			if name == server {
				return i
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	if p := s.names.Load(); p != nil {
		names = *p
	}
	for i, name := range names {
		if name == server {
			return i
		}
	}
	next := append(names[:len(names):len(names)], server)
	s.names.Store(&next)
	return len(next) - 1
}

func (s *serverIDs) name(id int) string {
	if p := s.names.Load(); p != nil && id < len(*p) {
		return (*p)[id]
	}
	return ""
}

type answerLabels struct {
	server, block, record, qtype string
	tier                         int
}

// eachAnswerCount calls f with every set's counts above zero.
func (t *table) eachAnswerCount(f func(answerLabels, uint64)) {
	for _, s := range t.sets {
		qtype := dns.TypeToString[s.qtype]
		s.counts.each(func(server, tier int, n uint64) {
			f(answerLabels{t.servers.name(server), t.block, s.name, qtype, tier}, n)
		})
	}
}

var answersDesc = prometheus.NewDesc(
	prometheus.BuildFQName(plugin.Namespace, subsystem, "answers_total"),
	"Answers by server, record set and the tier that served them (0 when all members were down).",
	[]string{"server", "block", "record", "type", "tier"}, nil,
)

// answersCollector exports answers_total: the counts of the tables serving
// now, plus those of the tables a reload retired, so that the counter goes
// on across reloads as a CounterVec's would.
type answersCollector struct {
	mu   sync.Mutex
	live map[*table]bool
	// retiring are tables shut down less than retireGrace ago: a query
	// that started before the shutdown may still be counting into them.
	retiring map[*table]time.Time
	retired  map[answerLabels]uint64
}

// retireGrace is how long a retired table's counts are read in place before
// they are folded into the retired totals, which is when its memory can go.
const retireGrace = time.Minute

var answersTotal = func() *answersCollector {
	c := &answersCollector{live: map[*table]bool{}, retiring: map[*table]time.Time{}, retired: map[answerLabels]uint64{}}
	prometheus.MustRegister(c)
	return c
}()

// start exports a table's counts; OnStartup calls it.
func (c *answersCollector) start(t *table) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live[t] = true
	c.fold(time.Now())
}

// retire marks a table as shut down; OnShutdown calls it. Calling it again
// does nothing.
func (c *answersCollector) retire(t *table) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live[t] {
		delete(c.live, t)
		c.retiring[t] = time.Now()
	}
	c.fold(time.Now())
}

// fold adds the counts of the tables retired more than retireGrace before
// now to the retired totals, and forgets the tables. c.mu is held.
func (c *answersCollector) fold(now time.Time) {
	for t, since := range c.retiring {
		if now.Sub(since) < retireGrace {
			continue
		}
		t.eachAnswerCount(func(l answerLabels, n uint64) { c.retired[l] += n })
		delete(c.retiring, t)
	}
}

// Describe implements prometheus.Collector.
func (c *answersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- answersDesc }

// Collect implements prometheus.Collector.
func (c *answersCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	c.fold(time.Now())
	totals := maps.Clone(c.retired)
	add := func(l answerLabels, n uint64) { totals[l] += n }
	for t := range c.live {
		t.eachAnswerCount(add)
	}
	for t := range c.retiring {
		t.eachAnswerCount(add)
	}
	c.mu.Unlock()
	for l, n := range totals {
		ch <- prometheus.MustNewConstMetric(answersDesc, prometheus.CounterValue, float64(n),
			l.server, l.block, l.record, l.qtype, tierLabels[l.tier])
	}
}
