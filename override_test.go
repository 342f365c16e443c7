package healthfailover

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const overrideCorefile = `healthfailover example.org {
	check east http://127.0.0.1:8080/
	check west http://127.0.0.2:8080/
	record pool.example.org A {
		primary 192.0.2.1 check east
		primary 192.0.2.2 check west
	}
	record www.example.org A {
		primary alias pool.example.org
		secondary 198.51.100.9
	}
	record api.example.org CNAME {
		primary lb.example.net
	}
}`

func TestOverrideFileLines(t *testing.T) {
	h, _ := newTestHandler(t, overrideCorefile, "east", "west")
	isCheck := func(name string) bool { return name == "east" || name == "west" }
	o := parseOverrides("maint.txt", []byte(`# maintenance CHG-1234
check east down  planned maintenance until 14:00
check west auto
drain pool.example.org a 192.0.2.2   moving traffic off # trailing comment
drain www.example.org A alias pool.example.org.
drain api.example.org CNAME LB.example.net

check esat down
check west sideways
drain pool.example.org A 192.0.2.99
drain nosuch.example.org A 192.0.2.1
drain pool.example.org TXTX 192.0.2.1
check east up
restart everything
check east
`), isCheck, h.table)

	if got := o.checks["east"]; got.force != "down" || got.by != "maint.txt:2" || got.reason != "planned maintenance until 14:00" {
		t.Errorf("check east: %+v", got)
	}
	if _, ok := o.checks["west"]; ok {
		t.Error("auto left an override in place")
	}
	pool := h.table.byName["pool.example.org."].a
	if d := o.drains[pool]["192.0.2.2"]; d.by != "maint.txt:4" || d.reason != "moving traffic off" {
		t.Errorf("drain of pool: %+v", o.drains[pool])
	}
	if _, ok := o.drains[h.table.byName["www.example.org."].a]["alias pool.example.org."]; !ok {
		t.Error("an alias member is not drained")
	}
	if _, ok := o.drains[h.table.byName["api.example.org."].cname]["lb.example.net."]; !ok {
		t.Error("a CNAME member named in another case is not drained")
	}
	want := []string{
		`maint.txt:8: unknown check "esat"; line ignored`,
		`maint.txt:9: check west "sideways": want up, down or auto; line ignored`,
		`maint.txt:10: drain: pool.example.org. A has no member 192.0.2.99; line ignored`,
		`maint.txt:11: drain: no record set nosuch.example.org. A; line ignored`,
		`maint.txt:12: drain pool.example.org: unknown type "TXTX"; line ignored`,
		`maint.txt:13: check east is given twice (first at line 2); line ignored`,
		`maint.txt:14: unknown statement "restart" (want check or drain); line ignored`,
		`maint.txt:15: want check NAME up|down|auto [REASON...]; line ignored`,
	}
	if strings.Join(o.errors, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n%s\nwant\n%s", strings.Join(o.errors, "\n"), strings.Join(want, "\n"))
	}
}

// A drained member answers as if unhealthy, in its own set only, and the
// tier model decides from there: the last primary drained fails over.
func TestDrainFollowsTheTierModel(t *testing.T) {
	h, _ := newTestHandler(t, overrideCorefile, "east", "west")
	pool := h.table.byName["pool.example.org."].a
	h.table.setDrained(map[*recordSet]map[string]drain{pool: {"192.0.2.2": {by: "f:1"}}})
	wantAnswer(t, h, "pool.example.org.", "192.0.2.1")
	wantAnswer(t, h, "www.example.org.", "192.0.2.1")
	if got := pool.current.Load().drained; len(got) != 1 || got[0] != "192.0.2.2" {
		t.Errorf("drained %q", got)
	}

	added, removed := h.table.setDrained(map[*recordSet]map[string]drain{pool: {"192.0.2.2": {by: "f:1"}, "192.0.2.1": {by: "f:2"}}})
	if len(added) != 1 || len(removed) != 0 {
		t.Errorf("added %v, removed %v; want one added", added, removed)
	}
	wantAnswer(t, h, "www.example.org.", "198.51.100.9") // the alias has no healthy member: the secondary

	_, removed = h.table.setDrained(nil)
	if len(removed) != 2 {
		t.Errorf("%d drains removed, want 2", len(removed))
	}
	wantAnswer(t, h, "pool.example.org.", "192.0.2.1", "192.0.2.2")
}

func wantAnswer(t *testing.T, h *HealthFailover, name string, want ...string) {
	t.Helper()
	m, _ := serve(t, h, name, dns.TypeA)
	var got []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			got = append(got, a.A.String())
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: %v, want %v", name, got, want)
	}
}
