package monitoring_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// dashboard is the part of Grafana's JSON model this test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasource     `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// query is a query variable's PromQL: Grafana stores it as a string, or
// (from Grafana 10) as an object holding one.
func (v variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	json.Unmarshal(v.Query, &o)
	return o.Query
}

func readDashboard(t *testing.T) (dashboard, []byte) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d, data
}

func (d dashboard) allPanels() []panel {
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	return all
}

func TestDashboardModel(t *testing.T) {
	d, data := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and a current schema", d.UID, d.Title, d.SchemaVersion)
	}
	// Self-contained: no images, links or scripts from elsewhere.
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).Find(data); m != nil {
		t.Errorf("%s refers to %s: the dashboard must need nothing from outside", dashboardFile, m)
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if ds := vars["datasource"]; ds.Type != "datasource" || ds.query() != "prometheus" {
		t.Errorf("the datasource variable is %+v, want a prometheus datasource variable", ds)
	}
	for _, name := range []string{"block", "check", "record"} {
		v, ok := vars[name]
		if !ok {
			t.Errorf("no %s variable", name)
			continue
		}
		if v.Type != "query" || !strings.HasPrefix(v.query(), "label_values(") || !v.Multi || !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("variable %s: %+v, want a multi-value label_values query whose All is .*", name, v)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s does not query the selected data source", v.Name)
		}
	}

	ids := map[int]bool{}
	var placed []panel
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, g)
		}
		for _, o := range placed {
			h := o.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", o.Title, p.Title)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query without an expression, a refId or the datasource variable", p.Title)
			}
		}
	}

	// The panels the issue asks for, each by what its query reads.
	exprs := func(pred func(string) bool) bool {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if pred(tg.Expr) {
					return true
				}
			}
		}
		return false
	}
	has := func(parts ...string) func(string) bool {
		return func(e string) bool {
			for _, s := range parts {
				if !strings.Contains(e, s) {
					return false
				}
			}
			return true
		}
	}
	for what, pred := range map[string]func(string) bool{
		"check health over time":      has("coredns_healthfailover_check_healthy{"),
		"transitions":                 has("coredns_healthfailover_transitions_total"),
		"probe phase p50":             has("histogram_quantile(0.5,", "coredns_healthfailover_probe_duration_seconds_bucket", "phase"),
		"probe phase p99":             has("histogram_quantile(0.99,", "coredns_healthfailover_probe_duration_seconds_bucket", "phase"),
		"serving tier per record set": has("coredns_healthfailover_record_serving_tier{"),
		"answers by tier":             has("coredns_healthfailover_answers_total", "tier)"),
	} {
		if !exprs(pred) {
			t.Errorf("no panel shows %s", what)
		}
	}
}

// dashboardQuery is one PromQL expression of the dashboard and where it is.
type dashboardQuery struct {
	where string
	expr  string
}

// dashboardQueries finds every PromQL expression of the dashboard: every
// "expr" at any depth (panels, rows, annotations) and the selector of every
// label_values variable.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	d, data := readDashboard(t)
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var queries []dashboardQuery
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				path += fmt.Sprintf(" %q", title)
			} else if name, ok := v["name"].(string); ok {
				path += fmt.Sprintf(" %q", name)
			}
			for k, child := range v {
				if s, ok := child.(string); ok && k == "expr" {
					queries = append(queries, dashboardQuery{path, s})
				}
				walk(path, child)
			}
		case []any:
			for _, child := range v {
				walk(path, child)
			}
		}
	}
	walk("dashboard", doc)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		sel, _, err := labelValues(v.query())
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		queries = append(queries, dashboardQuery{"variable " + v.Name, sel})
	}
	slices.SortFunc(queries, func(a, b dashboardQuery) int { return strings.Compare(a.where+a.expr, b.where+b.expr) })
	return queries
}

var labelValuesCall = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// labelValues splits Grafana's label_values(SELECTOR, LABEL).
func labelValues(q string) (selector, label string, err error) {
	m := labelValuesCall.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", fmt.Errorf("%q is not label_values(SELECTOR, LABEL)", q)
	}
	return m[1], m[2], nil
}

// Grafana's own variables, as promtool may read them.
var grafanaBuiltins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}

var (
	variableRef   = regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)(?::[a-z]+)?\}|\$([a-zA-Z0-9_]+)|\[\[([a-zA-Z0-9_]+)\]\]`)
	regexpMatcher = regexp.MustCompile(`(=~|!~)\s*"([^"\\]|\\.)*"`)
)

// interpolate replaces a dashboard's variables as Grafana would with All
// selected: a dashboard variable may only stand in a regular-expression
// matcher (it is multi-value), Grafana's intervals in a range.
func interpolate(expr string, defined map[string]bool) (string, error) {
	var err error
	name := func(m []string) string { return m[1] + m[2] + m[3] }
	out := regexpMatcher.ReplaceAllStringFunc(expr, func(matcher string) string {
		return variableRef.ReplaceAllStringFunc(matcher, func(ref string) string {
			v := name(variableRef.FindStringSubmatch(ref))
			if !defined[v] {
				err = fmt.Errorf("$%s is no variable of the dashboard", v)
			}
			return ".*"
		})
	})
	out = variableRef.ReplaceAllStringFunc(out, func(ref string) string {
		v := name(variableRef.FindStringSubmatch(ref))
		if d, ok := grafanaBuiltins[v]; ok {
			return d
		}
		err = fmt.Errorf("$%s outside a =~ or !~ matcher", v)
		return ref
	})
	return out, err
}

// interpolatedQueries are the dashboard's expressions as Prometheus gets them.
func interpolatedQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	d, _ := readDashboard(t)
	defined := map[string]bool{}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}
	var out []dashboardQuery
	for _, q := range dashboardQueries(t) {
		expr, err := interpolate(q.expr, defined)
		if err != nil {
			t.Errorf("%s: %s: %v", q.where, q.expr, err)
			continue
		}
		out = append(out, dashboardQuery{q.where, expr})
	}
	return out
}

// Every expression of the dashboard is valid PromQL to Prometheus's own
// parser: promtool check rules parses a rule file that holds them all.
func TestDashboardQueriesParse(t *testing.T) {
	queries := interpolatedQueries(t)
	if len(queries) < 10 {
		t.Fatalf("only %d queries found in %s", len(queries), dashboardFile)
	}
	var group ruleGroup
	group.Name = "dashboard"
	for i, q := range queries {
		name := fmt.Sprintf("Query%d", i)
		group.Rules = append(group.Rules, rule{Alert: name, Expr: q.expr})
		t.Logf("%s: %s", name, q.where)
	}
	data, err := yaml.Marshal(ruleFile{Groups: []ruleGroup{group}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard-queries.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "check", "rules", "dashboard-queries.yaml")
}

func TestInterpolate(t *testing.T) {
	defined := map[string]bool{"block": true, "check": true}
	for _, tc := range []struct{ in, out, err string }{
		{`rate(x{block=~"$block", check!~"${check}"}[$__rate_interval])`, `rate(x{block=~".*", check!~".*"}[5m])`, ""},
		{`x{block="$block"}`, "", "outside"},
		{`x{block=~"$blok"}`, "", "no variable"},
	} {
		out, err := interpolate(tc.in, defined)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || out != tc.out {
			t.Errorf("%s: %q, %v; want %q", tc.in, out, err, tc.out)
		}
	}
}
