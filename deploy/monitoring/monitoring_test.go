// Package monitoring_test checks the Prometheus alerting rules and the
// Grafana dashboard beside it: the rules with promtool (check rules, and the
// unit tests of alerts_test.yaml), the PrometheusRule against the rule file
// it is made from, every PromQL expression with Prometheus's own parser, and
// every metric and label the expressions name against the /metrics of a
// running CoreDNS with the plugin, so that renaming a metric breaks a test
// rather than a dashboard.
package monitoring_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile          = "alerts.yaml"
	rulesTestFile      = "alerts_test.yaml"
	prometheusRuleFile = "prometheusrule.yaml"
	dashboardFile      = "dashboard.json"
)

var update = flag.Bool("update", false, "rewrite "+prometheusRuleFile+" from "+rulesFile)

// requirePromtool returns promtool's path, or skips the test without it; in
// CI a missing promtool is a broken machine and fails the test.
func requirePromtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if fi, err := os.Stat("/usr/bin/promtool"); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return "/usr/bin/promtool" // Debian's prometheus package, outside a short PATH
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool is not installed (apt-get install prometheus), and CI is set")
	}
	t.Skip("promtool is not installed (apt-get install prometheus)")
	return ""
}

// promtool runs promtool in dir and fails the test, with its output, if it
// does not succeed.
func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(requirePromtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// A Prometheus rule file, decoded strictly: a misspelt field fails the test
// instead of being ignored.
type ruleFile struct {
	Groups []ruleGroup `json:"groups"`
}

type ruleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func readStrict(t *testing.T, path string, v any) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return data
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	var rf ruleFile
	readStrict(t, rulesFile, &rf)
	var rules []rule
	for _, g := range rf.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func TestAlertRulesPassPromtool(t *testing.T) {
	promtool(t, ".", "check", "rules", rulesFile)
	promtool(t, ".", "test", "rules", rulesTestFile)
}

// The alerts the issue asks for, each by the series it reads.
var wantAlerts = map[string]string{
	"a check unhealthy for longer than a few intervals":  "coredns_healthfailover_check_healthy == 0",
	"a record set answering from a tier after its first": "coredns_healthfailover_record_serving_tier > 1",
	"a record set with no healthy member (tier 0)":       "coredns_healthfailover_record_serving_tier == 0",
	"probe failures by reason rising":                    "coredns_healthfailover_probes_total",
	"healthfailover not ready (down)":                    "up == 0",
	"healthfailover not ready (no replica left)":         "absent(",
	"observers disagreeing (cluster)":                    "coredns_healthfailover_check_observers_healthy",
}

// templateLabel matches {{ $labels.NAME }} in an annotation.
var templateLabel = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

func TestAlertRulesAreComplete(t *testing.T) {
	rules := alertRules(t)
	for what, expr := range wantAlerts {
		if !slices.ContainsFunc(rules, func(r rule) bool { return strings.Contains(r.Expr, expr) }) {
			t.Errorf("no alert for %s (an expression with %q)", what, expr)
		}
	}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("%s: a recording rule in the alert rules", r.Record)
			continue
		}
		if !strings.HasPrefix(r.Alert, "Healthfailover") {
			t.Errorf("%s: alert names start with Healthfailover, so that routes can match them", r.Alert)
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
		}
		if r.For == "" {
			t.Errorf("%s: no for:, so one bad evaluation pages", r.Alert)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: needs a summary and a description", r.Alert)
		}
		// An annotation may only name labels the alert's series carry.
		refs, err := parseRefs(r.Expr)
		if err != nil {
			t.Errorf("%s: %v", r.Alert, err)
			continue
		}
		for _, text := range r.Annotations {
			for _, m := range templateLabel.FindAllStringSubmatch(text, -1) {
				if !alertCarries(r, refs, m[1]) {
					t.Errorf("%s: an annotation names $labels.%s, which its series do not carry", r.Alert, m[1])
				}
			}
		}
		// Every series-level name the expression keeps is told.
		for _, label := range []string{"block", "check", "record"} {
			if alertCarries(r, refs, label) && !strings.Contains(r.Annotations["description"], "$labels."+label) {
				t.Errorf("%s: the description does not say which %s", r.Alert, label)
			}
		}
	}
}

// alertCarries tells whether an alert's series carry a label: the labels of
// an aggregation's by clause when the expression aggregates, else every label
// of the series it selects (the scrape adds job and instance).
func alertCarries(r rule, refs promqlRefs, label string) bool {
	if strings.HasPrefix(strings.TrimSpace(r.Expr), "absent(") {
		return false
	}
	if strings.Contains(r.Expr, " by (") {
		return slices.Contains(refs.grouping, label)
	}
	switch label {
	case "job", "instance":
		return true
	}
	for _, s := range refs.selectors {
		if slices.Contains(knownLabels[s.metric], label) {
			return true
		}
	}
	return false
}

// knownLabels are the labels of the series the rules read, as the plugin
// and CoreDNS export them (the live test checks them against a real scrape).
var knownLabels = map[string][]string{
	"coredns_healthfailover_check_healthy":           {"block", "check"},
	"coredns_healthfailover_record_serving_tier":     {"block", "record", "type"},
	"coredns_healthfailover_probes_total":            {"block", "check", "reason"},
	"coredns_healthfailover_check_observers":         {"block", "check"},
	"coredns_healthfailover_check_observers_healthy": {"block", "check"},
	"coredns_plugin_enabled":                         {"server", "zone", "view", "name"},
	"up":                                             {},
}

// testFile is promtool's unit test file, as far as this test reads it.
type testFile struct {
	RuleFiles          []string `json:"rule_files"`
	EvaluationInterval string   `json:"evaluation_interval"`
	Tests              []struct {
		Name        string `json:"name"`
		Interval    string `json:"interval"`
		InputSeries []struct {
			Series string `json:"series"`
			Values string `json:"values"`
		} `json:"input_series"`
		AlertRuleTests []struct {
			EvalTime  string           `json:"eval_time"`
			Alertname string           `json:"alertname"`
			ExpAlerts []map[string]any `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// Every alert has a unit test in which it fires and one in which it stays
// quiet.
func TestEveryAlertHasUnitTests(t *testing.T) {
	var tf testFile
	readStrict(t, rulesTestFile, &tf)
	if !slices.Equal(tf.RuleFiles, []string{rulesFile}) {
		t.Errorf("%s tests %v, want [%s]", rulesTestFile, tf.RuleFiles, rulesFile)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertRuleTests {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] {
			t.Errorf("%s: no unit test in which it fires", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("%s: no unit test in which it stays quiet", r.Alert)
		}
	}
}

// The PrometheusRule is the rule file's groups under a Kubernetes header,
// made from it by renderPrometheusRule; `go test -run TestPrometheusRule
// -update` writes it again after alerts.yaml changed.
func TestPrometheusRule(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	want := renderPrometheusRule(rules)
	if *update {
		if err := os.WriteFile(prometheusRuleFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(prometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not %s's rules; after editing %s, run: go test ./deploy/monitoring/ -run TestPrometheusRule -update",
			prometheusRuleFile, rulesFile, rulesFile)
	}

	var manifest struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec ruleFile `json:"spec"`
	}
	readStrict(t, prometheusRuleFile, &manifest)
	if manifest.APIVersion != "monitoring.coreos.com/v1" || manifest.Kind != "PrometheusRule" {
		t.Errorf("%s is a %s %s, want a monitoring.coreos.com/v1 PrometheusRule", prometheusRuleFile, manifest.APIVersion, manifest.Kind)
	}
	if manifest.Metadata.Name == "" || manifest.Metadata.Namespace == "" {
		t.Errorf("%s: metadata %+v needs a name and a namespace", prometheusRuleFile, manifest.Metadata)
	}
	var rf ruleFile
	readStrict(t, rulesFile, &rf)
	if !reflect.DeepEqual(manifest.Spec, rf) {
		t.Errorf("the groups of %s are not those of %s", prometheusRuleFile, rulesFile)
	}
}

const prometheusRuleHeader = `# The alerting rules of alerts.yaml as a PrometheusRule, for prometheus-operator
# (kube-prometheus, kube-prometheus-stack). Made from alerts.yaml by
# go test ./deploy/monitoring/ -run TestPrometheusRule -update: edit alerts.yaml,
# not this file. A Prometheus loads it when its ruleSelector (and
# ruleNamespaceSelector) match it: add the labels yours selects, such as
# release: <helm release> with kube-prometheus-stack.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: healthfailover
  namespace: kube-system
  labels:
    app.kubernetes.io/name: healthfailover
    app.kubernetes.io/component: alerting-rules
spec:
`

// renderPrometheusRule puts a rule file, from its groups on and comments
// kept, under the PrometheusRule header.
func renderPrometheusRule(rules []byte) []byte {
	var b bytes.Buffer
	b.WriteString(prometheusRuleHeader)
	body := rules[bytes.Index(rules, []byte("\ngroups:"))+1:]
	for _, line := range strings.SplitAfter(string(body), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes()
}
