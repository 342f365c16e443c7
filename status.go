package healthfailover

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// The status endpoint is a read-only JSON view of every check and record
// set of the blocks that share its address (status_listener.go): what
// Route 53's console shows, without reading metrics. The document is
// {"checks": [...], "records": [...]}, each entry naming its server block,
// sorted by block, then by name. GET /status serves it; GET / serves its
// picture as an HTML page (status_page.go).

// statusEntries is what a handler keeps for the status endpoint: the order
// of its entries, worked out on the first request rather than on each.
type statusEntries struct {
	once    sync.Once
	checks  []statusCheckRef // sorted by name
	records []*recordSet     // sorted by name, then type
}

type statusCheckRef struct {
	name   string
	target string // empty for a calculated check
}

type checkStatus struct {
	Block                string       `json:"block"`
	Name                 string       `json:"name"`
	Kind                 checker.Kind `json:"kind"`
	Target               string       `json:"target,omitempty"`
	Healthy              bool         `json:"healthy"`
	Checked              bool         `json:"checked"`
	Since                time.Time    `json:"since"`
	Last                 *lastResult  `json:"last,omitempty"`
	ConsecutiveSuccesses int          `json:"consecutive_successes"`
	ConsecutiveFailures  int          `json:"consecutive_failures"`
	Successes            uint64       `json:"successes"`
	Failures             uint64       `json:"failures"`
	Transitions          uint64       `json:"transitions"`
	HealthyChildren      *int         `json:"healthy_children,omitempty"`
	Forced               string       `json:"forced,omitempty"`
	ForcedBy             string       `json:"forced_by,omitempty"`
	ForceReason          string       `json:"force_reason,omitempty"`
	ProbedHealthy        *bool        `json:"probed_healthy,omitempty"`
	Cluster              *checkViews  `json:"cluster,omitempty"`
}

// checkViews is, in a cluster, who observes a check and every view of it
// this member holds.
type checkViews struct {
	Observers []string      `json:"observers"`
	Views     []observation `json:"views"`
}

type observation struct {
	Member     string         `json:"member"`
	Observer   bool           `json:"observer"`
	Fresh      bool           `json:"fresh"`
	Healthy    bool           `json:"healthy"`
	Since      time.Time      `json:"since"`
	Reason     checker.Reason `json:"reason"`
	Message    string         `json:"message"`
	AgeSeconds float64        `json:"age_seconds"`
}

type lastResult struct {
	OK      bool           `json:"ok"`
	Reason  checker.Reason `json:"reason"`
	Message string         `json:"message"`
	Status  int            `json:"status,omitempty"`
	At      time.Time      `json:"at"`
	Phases  probePhases    `json:"phases_us"`
}

// probePhases are a probe's phase durations in microseconds: a struct, not
// a map, to spare an allocation per entry; its fields are in the sorted
// order the map's keys were written in, so the document reads the same.
type probePhases struct {
	Connect      int64 `json:"connect"`
	FirstByte    int64 `json:"first_byte"`
	TLSHandshake int64 `json:"tls_handshake"`
	Total        int64 `json:"total"`
}

type recordStatus struct {
	Block          string   `json:"block"`
	Name           string   `json:"name"`
	Type           string   `json:"type"`
	ServingTier    int      `json:"serving_tier"`
	HealthyMembers int      `json:"healthy_members"`
	Answer         []string `json:"answer"`
	Drained        []string `json:"drained,omitempty"`
	Weighted       bool     `json:"weighted,omitempty"`
	Servfail       bool     `json:"servfail,omitempty"`
}

// serveStatus writes the document of members (sorted by block) entry by
// entry: with 10,000 record sets it is megabytes, and building it whole
// cost every concurrent reader a copy. An entry is read when it is
// written, so two entries may be a moment apart; each is consistent.
func serveStatus(w http.ResponseWriter, r *http.Request, members []*HealthFailover) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only: use GET", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/status":
	case "/":
		serveStatusPage(w, r, members) // status_page.go
		return
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		return
	}
	writeStatus(w, members)
}

// writeStatus streams the document to w, indented as encoding/json's
// SetIndent("", "  ") indents it, and stops at the first write error (the
// reader has gone).
func writeStatus(w io.Writer, members []*HealthFailover) error {
	s := newStatusStream(w)
	s.raw("{\n  \"checks\": [")
	for _, h := range members {
		for _, c := range h.statusOrder().checks {
			if st, ok := h.checks.State(c.name); ok {
				cs := newCheckStatus(h.table.block, st, c.target)
				cs.Cluster = h.checkViews(c.name)
				s.entry(cs)
			}
		}
	}
	s.closeArray()
	s.raw(",\n  \"records\": [")
	for _, h := range members {
		for _, set := range h.statusOrder().records {
			s.entry(newRecordStatus(h.table.block, set))
		}
	}
	s.closeArray()
	s.raw("\n}\n")
	return s.err
}

// statusStream writes the document's frame and encodes one entry at a
// time into a buffer it reuses.
type statusStream struct {
	w       io.Writer
	buf     bytes.Buffer
	enc     *json.Encoder
	entries int // in the array being written
	err     error
}

func newStatusStream(w io.Writer) *statusStream {
	s := &statusStream{w: w}
	s.enc = json.NewEncoder(&s.buf)
	// An entry sits two levels deep: its lines after the first carry the
	// indentation of the level it sits at.
	s.enc.SetIndent("    ", "  ")
	return s
}

func (s *statusStream) raw(text string) {
	if s.err == nil {
		_, s.err = io.WriteString(s.w, text)
	}
}

func (s *statusStream) entry(v any) {
	if s.err != nil {
		return
	}
	s.buf.Reset()
	if s.entries == 0 {
		s.buf.WriteString("\n    ")
	} else {
		s.buf.WriteString(",\n    ")
	}
	s.entries++
	if s.err = s.enc.Encode(v); s.err != nil {
		return
	}
	// Encode ends the value with a newline; the frame decides what follows.
	_, s.err = s.w.Write(bytes.TrimSuffix(s.buf.Bytes(), []byte("\n")))
}

// closeArray ends an array as encoding/json does: "[]" when empty.
func (s *statusStream) closeArray() {
	if s.entries > 0 {
		s.raw("\n  ]")
	} else {
		s.raw("]")
	}
	s.entries = 0
}

// statusOrder returns the handler's entry order, worked out once: the
// configuration does not change under a handler.
func (h *HealthFailover) statusOrder() *statusEntries {
	ss := &h.statusEntries
	ss.once.Do(func() {
		if h.checks != nil {
			for _, spec := range h.checks.Specs() {
				ref := statusCheckRef{name: spec.Name}
				if spec.Kind != checker.Calculated {
					ref.target = string(spec.Kind) + "://" + spec.Address + spec.Path
				}
				ss.checks = append(ss.checks, ref)
			}
			slices.SortFunc(ss.checks, func(a, b statusCheckRef) int { return strings.Compare(a.name, b.name) })
		}
		ss.records = slices.Clone(h.table.sets)
		slices.SortFunc(ss.records, func(a, b *recordSet) int {
			if c := strings.Compare(a.name, b.name); c != 0 {
				return c
			}
			return strings.Compare(dns.TypeToString[a.qtype], dns.TypeToString[b.qtype])
		})
	})
	return ss
}

func newCheckStatus(block string, st checker.State, target string) checkStatus {
	cs := checkStatus{
		Block: block, Name: st.Name, Kind: st.Kind, Target: target, Healthy: st.Healthy, Checked: st.Checked, Since: st.Since,
		ConsecutiveSuccesses: st.ConsecutiveSuccesses, ConsecutiveFailures: st.ConsecutiveFailures,
		Successes: st.Successes, Failures: st.Failures, Transitions: st.Transitions,
	}
	if st.Kind == checker.Calculated {
		n := st.HealthyChildren
		cs.HealthyChildren = &n
	}
	if st.Forced != checker.ForceNone {
		probed := st.Probed
		cs.Forced, cs.ForcedBy, cs.ForceReason, cs.ProbedHealthy = string(st.Forced), st.ForcedBy, st.ForceReason, &probed
	}
	if !st.Last.At.IsZero() {
		cs.Last = &lastResult{
			OK: st.Last.OK, Reason: st.Last.Reason, Message: st.Last.Message, Status: st.Last.Status, At: st.Last.At,
			Phases: probePhases{
				Connect:      st.Last.Phases.Connect.Microseconds(),
				FirstByte:    st.Last.Phases.FirstByte.Microseconds(),
				TLSHandshake: st.Last.Phases.TLSHandshake.Microseconds(),
				Total:        st.Last.Phases.Total.Microseconds(),
			},
		}
	}
	return cs
}

// checkViews is nil without a cluster and for the checks it does not
// share (calculated, disabled).
func (h *HealthFailover) checkViews(check string) *checkViews {
	g := h.group.Load()
	if g == nil {
		return nil
	}
	if _, ok := h.probes.State(check); !ok {
		return nil
	}
	observers, views := g.Observations(check)
	cv := &checkViews{Observers: observers, Views: make([]observation, len(views))}
	for i, v := range views {
		cv.Views[i] = observation{Member: v.Member, Observer: v.Observer, Fresh: v.Fresh, Healthy: v.Healthy, Since: v.Since,
			Reason: checker.Reason(v.Reason), Message: v.Message, AgeSeconds: v.Age.Seconds()}
	}
	return cv
}

func newRecordStatus(block string, s *recordSet) recordStatus {
	a := s.current.Load()
	return recordStatus{
		Block:          block,
		Name:           s.name,
		Type:           dns.TypeToString[s.qtype],
		ServingTier:    a.tier,
		HealthyMembers: a.healthyMembers,
		Answer:         a.values(),
		Drained:        a.drained,
		Weighted:       a.cumWeights != nil,
		Servfail:       a.servfail,
	}
}

// values lists every candidate of an answer, as the record's data.
func (a *snapshot) values() []string {
	out := []string{}
	for _, c := range a.choices {
		if c.nested != nil {
			out = append(out, c.nested.values()...)
			continue
		}
		out = append(out, rrData(c.rr))
	}
	return out
}
