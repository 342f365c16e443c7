package healthfailover

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The status page is the picture of the status document: the same JSON,
// decoded and drawn, plus what a picture needs and the document does not
// carry (each set's members by tier, each check's recent results). It is
// rendered on the server from one embedded template, with no external
// asset, and reloads itself. html/template escapes every name, value and
// message: some of them come from backends.

//go:embed status_page.html
var statusPageHTML string

// statusPageRefresh is how often, in seconds, the page reloads itself.
const statusPageRefresh = 5

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ms":       pageMillis,
	"clock":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"age":      pageAge,
	"tierName": pageTierName,
}).Parse(statusPageHTML))

// pageDoc is the status document as the page reads it.
type pageDoc struct {
	Checks  []pageCheck  `json:"checks"`
	Records []pageRecord `json:"records"`
}

type pageCheck struct {
	checkStatus

	// Not in the document: filled in from the handler.
	Recent        []resultMark `json:"-"`
	OwnProbesOnly bool         `json:"-"` // in a cluster, Recent is this member's probes only
}

type pageRecord struct {
	recordStatus

	// Not in the document: filled in from the handler.
	Tiers     []pageTier `json:"-"`
	OnAllDown string     `json:"-"`
}

// pageTier is one tier of a set, with its members.
type pageTier struct {
	Tier    int
	Serving bool
	Members []pageMember
}

type pageMember struct {
	Value  string
	Check  string
	Weight int // -1 when not weighted
	State  string
}

// pageData is what the template draws.
type pageData struct {
	pageDoc
	Generated time.Time
	Refresh   int
	Unhealthy int // checks
	Degraded  int // record sets not served by their first tier
}

// serveStatusPage writes the status page of members.
func serveStatusPage(w http.ResponseWriter, r *http.Request, members []*HealthFailover) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	data, err := newPageData(members, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := statusPage.Execute(&buf, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(buf.Bytes())
}

// newPageData reads the status document of members, as GET /status serves
// it, and adds the members and recent results of the handlers it came from.
func newPageData(members []*HealthFailover, now time.Time) (*pageData, error) {
	var doc bytes.Buffer
	if err := writeStatus(&doc, members); err != nil {
		return nil, err
	}
	data := &pageData{Generated: now, Refresh: statusPageRefresh}
	if err := json.Unmarshal(doc.Bytes(), &data.pageDoc); err != nil {
		return nil, fmt.Errorf("status document: %w", err)
	}

	byBlock := map[string][]*HealthFailover{}
	type setKey struct{ block, name, typ string }
	type setRef struct {
		h   *HealthFailover
		set *recordSet
	}
	sets := map[setKey]setRef{}
	for _, h := range members {
		byBlock[h.table.block] = append(byBlock[h.table.block], h)
		for _, s := range h.table.sets {
			sets[setKey{h.table.block, s.name, dns.TypeToString[s.qtype]}] = setRef{h, s}
		}
	}
	for i := range data.Checks {
		c := &data.Checks[i]
		for _, h := range byBlock[c.Block] {
			if _, ok := h.probes.State(c.Name); ok {
				c.Recent = h.history.recent(c.Name)
				c.OwnProbesOnly = h.probes != h.checks
			}
		}
		if !c.Healthy {
			data.Unhealthy++
		}
	}
	for i := range data.Records {
		rec := &data.Records[i]
		if ref, ok := sets[setKey{rec.Block, rec.Name, rec.Type}]; ok {
			rec.Tiers = pageTiers(ref.set, ref.h.table.health, rec.ServingTier, rec.Drained)
			rec.OnAllDown = onAllDownWord(ref.set.onAllDown)
		}
		if len(rec.Tiers) > 0 && rec.ServingTier != rec.Tiers[0].Tier {
			data.Degraded++
		}
	}
	return data, nil
}

// pageTiers lists a set's members by tier, each healthy, unhealthy or
// drained as the answers see it now.
func pageTiers(s *recordSet, health healthFunc, serving int, drained []string) []pageTier {
	var tiers []pageTier
	for _, m := range s.members {
		if len(tiers) == 0 || tiers[len(tiers)-1].Tier != m.tier {
			tiers = append(tiers, pageTier{Tier: m.tier, Serving: m.tier == serving})
		}
		pm := pageMember{Value: m.value, Check: m.check, Weight: m.weight, State: "unhealthy"}
		switch {
		case slices.Contains(drained, pm.Value):
			pm.State = "drained"
		case m.healthy(health):
			pm.State = "healthy"
		}
		t := &tiers[len(tiers)-1]
		t.Members = append(t.Members, pm)
	}
	return tiers
}

// ForcedDetail says who forced the check, why, and what its probes say.
func (c pageCheck) ForcedDetail() string {
	var parts []string
	if c.ForcedBy != "" {
		parts = append(parts, "by "+c.ForcedBy)
	}
	if c.ForceReason != "" {
		parts = append(parts, c.ForceReason)
	}
	if c.ProbedHealthy != nil {
		parts = append(parts, "the probes say "+healthWord(*c.ProbedHealthy))
	}
	return strings.Join(parts, "; ")
}

// State is the check's word on the page.
func (c pageCheck) State() string {
	switch {
	case !c.Checked:
		return "pending"
	case c.Healthy:
		return "healthy"
	}
	return "unhealthy"
}

// AnswerText is what a query gets now, in words.
func (r pageRecord) AnswerText() string {
	switch {
	case r.Servfail:
		return "SERVFAIL (no healthy member)"
	case len(r.Answer) == 0:
		return "NODATA (no healthy member)"
	}
	text := strings.Join(r.Answer, ", ")
	if r.Weighted && len(r.Answer) > 1 {
		text = "one of " + text + ", by weight"
	}
	if r.ServingTier == 0 {
		text += " (no healthy member: answered as if healthy)"
	}
	return text
}

func onAllDownWord(p allDownPolicy) string {
	switch p {
	case allDownNodata:
		return "nodata"
	case allDownServfail:
		return "servfail"
	}
	return "primary"
}

// Title is what hovering a result shows.
func (m resultMark) Title() string {
	s := m.At.UTC().Format("15:04:05.000") + " " + string(m.Reason)
	if m.Message != "" {
		s += ": " + m.Message
	}
	return s + " (" + pageMillis(m.Total.Microseconds()) + ")"
}

func pageTierName(tier int) string {
	switch tier {
	case 0:
		return "none"
	case 1:
		return "primary"
	case 2:
		return "secondary"
	}
	return "tier " + strconv.Itoa(tier)
}

// pageMillis writes a duration in µs as milliseconds.
func pageMillis(us int64) string {
	if us <= 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(us)/1000, 'f', 2, 64) + " ms"
}

// pageAge says how long ago t was, to the second.
func pageAge(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t).Truncate(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}
