package healthfailover

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// statusServer serves a read-only JSON view of every check and record set:
// what Route 53's console shows, without reading metrics.
type statusServer struct {
	mu  sync.Mutex
	srv *http.Server
}

type checkStatus struct {
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
}

type lastResult struct {
	OK      bool             `json:"ok"`
	Reason  checker.Reason   `json:"reason"`
	Message string           `json:"message"`
	Status  int              `json:"status,omitempty"`
	At      time.Time        `json:"at"`
	Phases  map[string]int64 `json:"phases_us"`
}

type recordStatus struct {
	Name           string   `json:"name"`
	Type           string   `json:"type"`
	ServingTier    int      `json:"serving_tier"`
	HealthyMembers int      `json:"healthy_members"`
	Answer         []string `json:"answer"`
	Weighted       bool     `json:"weighted,omitempty"`
	Servfail       bool     `json:"servfail,omitempty"`
}

type statusDoc struct {
	Checks  []checkStatus  `json:"checks"`
	Records []recordStatus `json:"records"`
}

// startStatus listens on the status address, if one is configured.
func (h *HealthFailover) startStatus() error {
	if h.status == "" {
		return nil
	}
	h.statusSrv.mu.Lock()
	defer h.statusSrv.mu.Unlock()
	if h.statusSrv.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", h.status)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", h.serveStatus)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
	h.statusSrv.srv = srv
	go srv.Serve(ln)
	return nil
}

// stopStatus closes the listener; it may run more than once.
func (h *HealthFailover) stopStatus() error {
	h.statusSrv.mu.Lock()
	defer h.statusSrv.mu.Unlock()
	if h.statusSrv.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := h.statusSrv.srv.Shutdown(ctx)
	h.statusSrv.srv = nil
	return err
}

func (h *HealthFailover) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only: use GET", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path != "/" && r.URL.Path != "/status" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(h.statusDoc())
}

func (h *HealthFailover) statusDoc() statusDoc {
	doc := statusDoc{Checks: []checkStatus{}, Records: []recordStatus{}}
	if h.checks != nil {
		targets := map[string]string{}
		for _, s := range h.checks.Specs() {
			if s.Kind != checker.Calculated {
				targets[s.Name] = string(s.Kind) + "://" + s.Address + s.Path
			}
		}
		for _, st := range h.checks.Snapshot() {
			doc.Checks = append(doc.Checks, newCheckStatus(st, targets[st.Name]))
		}
	}
	for _, s := range h.table.sets {
		a := s.current.Load()
		doc.Records = append(doc.Records, recordStatus{
			Name:           s.name,
			Type:           dns.TypeToString[s.qtype],
			ServingTier:    a.tier,
			HealthyMembers: a.healthyMembers,
			Answer:         a.values(),
			Weighted:       a.cumWeights != nil,
			Servfail:       a.servfail,
		})
	}
	sort.Slice(doc.Records, func(i, j int) bool {
		if doc.Records[i].Name != doc.Records[j].Name {
			return doc.Records[i].Name < doc.Records[j].Name
		}
		return doc.Records[i].Type < doc.Records[j].Type
	})
	return doc
}

func newCheckStatus(st checker.State, target string) checkStatus {
	cs := checkStatus{
		Name: st.Name, Kind: st.Kind, Target: target, Healthy: st.Healthy, Checked: st.Checked, Since: st.Since,
		ConsecutiveSuccesses: st.ConsecutiveSuccesses, ConsecutiveFailures: st.ConsecutiveFailures,
		Successes: st.Successes, Failures: st.Failures, Transitions: st.Transitions,
	}
	if st.Kind == checker.Calculated {
		n := st.HealthyChildren
		cs.HealthyChildren = &n
	}
	if !st.Last.At.IsZero() {
		cs.Last = &lastResult{
			OK: st.Last.OK, Reason: st.Last.Reason, Message: st.Last.Message, Status: st.Last.Status, At: st.Last.At,
			Phases: map[string]int64{
				"connect":       st.Last.Phases.Connect.Microseconds(),
				"tls_handshake": st.Last.Phases.TLSHandshake.Microseconds(),
				"first_byte":    st.Last.Phases.FirstByte.Microseconds(),
				"total":         st.Last.Phases.Total.Microseconds(),
			},
		}
	}
	return cs
}

// values lists every candidate of an answer, as the record's data.
func (a *answer) values() []string {
	out := []string{}
	for _, c := range a.choices {
		if c.nested != nil {
			out = append(out, c.nested.values()...)
			continue
		}
		switch rr := c.rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.CNAME:
			out = append(out, rr.Target)
		}
	}
	return out
}
