package monitoring_test

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	_ "github.com/healthfailover/healthfailover" // registers the plugin
	"github.com/healthfailover/healthfailover/internal/fakebackend"
	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/healthfailover/healthfailover/internal/testkit"
)

// Labels that Prometheus gives every series it scrapes, and the series it
// makes itself for every target.
var (
	targetLabels = []string{"job", "instance"}
	targetSeries = map[string][]string{"up": nil}
)

// exposition is what a /metrics page holds: every sample name with the
// label names its series carry.
type exposition map[string]map[string]bool

// parseExposition reads Prometheus's text format.
func parseExposition(text string) (exposition, error) {
	exp := exposition{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			return nil, fmt.Errorf("a sample without a value: %q", line)
		}
		name, labels := line[:end], map[string]bool{}
		if line[end] == '{' {
			rest := line[end+1:]
			for !strings.HasPrefix(rest, "}") {
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					return nil, fmt.Errorf("cannot read the labels of %q", line)
				}
				labels[strings.TrimPrefix(rest[:eq], ",")] = true
				i := eq + 2
				for i < len(rest) && rest[i] != '"' {
					if rest[i] == '\\' {
						i++
					}
					i++
				}
				if i >= len(rest) {
					return nil, fmt.Errorf("an unterminated label value in %q", line)
				}
				rest = strings.TrimPrefix(rest[i+1:], ",")
			}
		}
		if exp[name] == nil {
			exp[name] = map[string]bool{}
		}
		for l := range labels {
			exp[name][l] = true
		}
	}
	return exp, nil
}

// liveScenario starts CoreDNS with every kind of series the plugin exports:
// a check that is up, one that is down (so a transition), a calculated
// check, a record set answering from its second tier after a query, and a
// cluster block (of one member). It returns the scrape of its /metrics.
func liveScenario(t *testing.T) exposition {
	up := fakebackend.NewHTTP(t, fakebackend.Options{Body: "ok"})
	metricsAddr := testkit.FreeAddr(t)
	corefile := fmt.Sprintf(`example.org:0 {
		prometheus %s
		healthfailover {
			check up %s/ {
				interval 100ms
			}
			check down tcp://%s {
				interval 100ms
				failure_threshold 1
			}
			check either calculated up down {
				healthy_threshold 1
			}
			record www.example.org A {
				primary 127.0.0.1 check down
				secondary 127.0.0.2 check up
			}
			cluster {
				bind %s
			}
		}
	}`, metricsAddr, up.URL(), testkit.FreeAddr(t), testkit.FreeAddr(t))
	inst, err := inprocess.Start(corefile)
	if err != nil {
		t.Fatalf("could not start CoreDNS: %v", err)
	}
	t.Cleanup(func() { inprocess.Stop(inst) })
	query(t, inst)

	// The answer's count is the last series the scenario makes. Without it
	// after a while (answers_total renamed?), the names are judged anyway.
	var exp exposition
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, text := testkit.HTTPGet(t, "http://"+metricsAddr+"/metrics")
		if exp, err = parseExposition(text); err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		if exp["coredns_healthfailover_answers_total"]["tier"] || time.Now().After(deadline) {
			break
		}
	}
	return exp
}

func query(t *testing.T, inst *caddy.Instance) {
	t.Helper()
	udp, _ := inprocess.Addrs(inst, 0)
	ips, _ := testkit.Addresses(t, "udp", udp, "www.example.org.")
	if !testkit.SameAnswer(ips, "127.0.0.2") {
		t.Fatalf("www.example.org answered %v, want the secondary 127.0.0.2", ips)
	}
}

// Every metric the rules and the dashboard name is one CoreDNS with the
// plugin exports, with the labels they use.
func TestQueriesNameExportedMetrics(t *testing.T) {
	exp := liveScenario(t)

	var queries []dashboardQuery
	for _, r := range alertRules(t) {
		queries = append(queries, dashboardQuery{"alert " + r.Alert, r.Expr})
	}
	queries = append(queries, interpolatedQueries(t)...)
	d, _ := readDashboard(t)
	variableLabels := map[string]string{} // where of a label_values variable's query -> its label
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			if _, label, err := labelValues(v.query()); err == nil {
				variableLabels["variable "+v.Name] = label
			}
		}
	}

	// labelsOf returns the labels a metric's series carry, and whether the
	// metric is exported.
	labelsOf := func(metric string) ([]string, bool) {
		if l, ok := targetSeries[metric]; ok {
			return l, true
		}
		if labels, ok := exp[metric]; ok {
			return slices.Sorted(maps.Keys(labels)), true
		}
		return nil, false
	}

	used := map[string]bool{}
	for _, q := range queries {
		refs, err := parseRefs(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		exprLabels := slices.Clone(targetLabels)
		for _, s := range refs.selectors {
			used[s.metric] = true
			labels, ok := labelsOf(s.metric)
			if !ok {
				t.Errorf("%s: %s is not a metric CoreDNS with healthfailover exports", q.where, s.metric)
				continue
			}
			exprLabels = append(exprLabels, labels...)
			for _, l := range s.labels {
				if !slices.Contains(labels, l) && !slices.Contains(targetLabels, l) {
					t.Errorf("%s: %s has no label %s (it has %v)", q.where, s.metric, l, labels)
				}
			}
		}
		for _, l := range refs.grouping {
			if !slices.Contains(exprLabels, l) {
				t.Errorf("%s: groups by %s, which none of its series carries", q.where, l)
			}
		}
		if label, ok := variableLabels[q.where]; ok && !slices.Contains(exprLabels, label) {
			t.Errorf("%s: label_values of %s, which its series do not carry", q.where, label)
		}
	}

	// The labels the rule tests assume are those of the scrape.
	for metric, want := range knownLabels {
		labels, ok := labelsOf(metric)
		if !ok {
			t.Errorf("%s is not exported", metric)
		}
		for _, l := range want {
			if !slices.Contains(labels, l) {
				t.Errorf("%s: no label %s (it has %v)", metric, l, labels)
			}
		}
	}

	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("names checked: %s", strings.Join(names, " "))
	if len(names) < 10 {
		t.Errorf("only %d metric names found in the rules and the dashboard", len(names))
	}
}
