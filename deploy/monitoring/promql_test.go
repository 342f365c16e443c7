package monitoring_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Prometheus's own parser (promtool check rules) decides whether an
// expression is valid PromQL; this scanner only reads, from expressions that
// parser accepts, the names they refer to: the metric of every selector with
// the labels its matchers name, and the labels of by, without, on, ignoring,
// group_left and group_right. Importing the parser itself would bring most of
// Prometheus into this module's build.

// selector is one vector selector: a metric name and its matchers' labels.
type selector struct {
	metric string
	labels []string
}

// promqlRefs is what one expression refers to.
type promqlRefs struct {
	selectors []selector
	grouping  []string // labels of by, without, on, ignoring, group_left, group_right
}

type tokenKind int

const (
	identToken tokenKind = iota
	numberToken
	stringToken
	punctToken
)

type token struct {
	kind tokenKind
	text string
}

// Words that are never a metric name where they stand (PromQL compares them
// case-insensitively).
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
}

var promqlAggregators = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

var groupingClauses = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// parseRefs reads the selectors and grouping labels of a valid expression.
func parseRefs(expr string) (promqlRefs, error) {
	var refs promqlRefs
	toks, err := lexPromQL(expr)
	if err != nil {
		return refs, err
	}
	is := func(i int, punct string) bool {
		return i < len(toks) && toks[i].kind == punctToken && toks[i].text == punct
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case is(i, "["): // a range or subquery: durations only
			for i < len(toks) && !is(i, "]") {
				i++
			}
		case is(i, "{"): // a selector without a metric name before it
			sel, next, err := readMatchers(toks, i)
			if err != nil {
				return refs, err
			}
			if sel.metric == "" {
				return refs, fmt.Errorf("a selector with no metric name in %q: which metric it reads cannot be checked", expr)
			}
			refs.selectors = append(refs.selectors, sel)
			i = next
		case t.kind == identToken:
			word := strings.ToLower(t.text)
			switch {
			case groupingClauses[word]:
				if !is(i+1, "(") {
					continue // group_left without labels
				}
				for i += 2; i < len(toks) && !is(i, ")"); i++ {
					if toks[i].kind == identToken {
						refs.grouping = append(refs.grouping, toks[i].text)
					}
				}
			case promqlKeywords[word]:
			case is(i+1, "("): // a function or an aggregation
			case promqlAggregators[word] && i+1 < len(toks) && toks[i+1].kind == identToken &&
				groupingClauses[strings.ToLower(toks[i+1].text)]: // sum by (…) (…)
			default:
				sel := selector{metric: t.text}
				if is(i+1, "{") {
					withMatchers, next, err := readMatchers(toks, i+1)
					if err != nil {
						return refs, err
					}
					if withMatchers.metric != "" {
						return refs, fmt.Errorf("metric %s also named by __name__ in %q", t.text, expr)
					}
					sel.labels = withMatchers.labels
					i = next
				}
				refs.selectors = append(refs.selectors, sel)
			}
		}
	}
	return refs, nil
}

// readMatchers reads {label op "value", …} from toks[open], which is "{". It
// returns the labels and, for {__name__="x"}, the metric; and the index of
// the closing "}".
func readMatchers(toks []token, open int) (selector, int, error) {
	var sel selector
	i := open + 1
	for i < len(toks) {
		if toks[i].kind == punctToken && toks[i].text == "}" {
			return sel, i, nil
		}
		if toks[i].kind == punctToken && toks[i].text == "," {
			i++
			continue
		}
		if i+2 >= len(toks) || toks[i+1].kind != punctToken || toks[i+2].kind != stringToken {
			return sel, i, fmt.Errorf("cannot read the matcher at %q", toks[i].text)
		}
		name, op, value := toks[i].text, toks[i+1].text, toks[i+2].text
		if toks[i].kind == stringToken {
			unquoted, err := unquote(name)
			if err != nil {
				return sel, i, err
			}
			name = unquoted
		}
		if name == "__name__" {
			if op != "=" {
				return sel, i, fmt.Errorf("__name__%s%s: which metric it reads cannot be checked", op, value)
			}
			metric, err := unquote(value)
			if err != nil {
				return sel, i, err
			}
			sel.metric = metric
		} else {
			sel.labels = append(sel.labels, name)
		}
		i += 3
	}
	return sel, i, fmt.Errorf("a selector's matchers are not closed")
}

func unquote(s string) (string, error) {
	if strings.HasPrefix(s, "'") {
		// PromQL's single-quoted strings escape as its double-quoted ones.
		s = `"` + strings.ReplaceAll(strings.ReplaceAll(s[1:len(s)-1], `\'`, `'`), `"`, `\"`) + `"`
	}
	return strconv.Unquote(s)
}

// lexPromQL splits an expression into identifiers, numbers and durations,
// strings and punctuation; comments are dropped.
func lexPromQL(s string) ([]token, error) {
	var toks []token
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || isDigit(c) }
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string in %q", s)
			}
			toks = append(toks, token{stringToken, s[i : j+1]})
			i = j + 1
		case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
			j := i
			hex := strings.HasPrefix(s[i:], "0x") || strings.HasPrefix(s[i:], "0X")
			for j < len(s) && (isIdent(s[j]) && s[j] != ':' || s[j] == '.') {
				j++
				// 1e-3: an exponent's sign belongs to the number.
				if !hex && j < len(s) && (s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E') {
					j++
				}
			}
			toks = append(toks, token{numberToken, s[i:j]})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			toks = append(toks, token{identToken, s[i:j]})
			i = j
		default:
			if i+1 < len(s) && slices.Contains([]string{"==", "!=", "<=", ">=", "=~", "!~"}, s[i:i+2]) {
				toks = append(toks, token{punctToken, s[i : i+2]})
				i += 2
				continue
			}
			if !strings.ContainsRune("(){}[],+-*/%^<>=@:", rune(c)) {
				return nil, fmt.Errorf("unexpected %q in %q", c, s)
			}
			toks = append(toks, token{punctToken, string(c)})
			i++
		}
	}
	return toks, nil
}

func TestParseRefs(t *testing.T) {
	for _, tc := range []struct {
		expr      string
		selectors []selector
		grouping  []string
	}{
		{`up == 0`, []selector{{metric: "up"}}, nil},
		{
			`sum by (job, instance) (rate(a_total{reason!="ok", x=~'y.*'}[5m:1m] offset 1h)) / on (job) group_left (z) b > bool 0.1 unless c`,
			[]selector{{"a_total", []string{"reason", "x"}}, {metric: "b"}, {metric: "c"}},
			[]string{"job", "instance", "job", "z"},
		},
		{
			`histogram_quantile(0.99, sum without (pod) (rate(h_bucket{le!="+Inf"}[5m]))) * 1e-3 # a comment: not_a_metric`,
			[]selector{{"h_bucket", []string{"le"}}},
			[]string{"pod"},
		},
		{`count(x == 0) or vector(0)`, []selector{{metric: "x"}}, nil},
		{`topk by (a) (5, m:recorded:rate5m) and ON(a) group_right n @ start()`, []selector{{metric: "m:recorded:rate5m"}, {metric: "n"}}, []string{"a", "a"}},
		{`{__name__="named", a="b"} - absent(sum)`, []selector{{"named", []string{"a"}}, {metric: "sum"}}, nil},
		{`last_over_time(m{name="healthfailover"}[1d]) and Inf > NaN`, []selector{{"m", []string{"name"}}}, nil},
	} {
		refs, err := parseRefs(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if fmt.Sprint(refs.selectors) != fmt.Sprint(tc.selectors) || fmt.Sprint(refs.grouping) != fmt.Sprint(tc.grouping) {
			t.Errorf("%s:\n got %v %v\nwant %v %v", tc.expr, refs.selectors, refs.grouping, tc.selectors, tc.grouping)
		}
	}
	for _, expr := range []string{`{job="x"}`, `{__name__=~"coredns_.*"}`, `x{a="b"`, `"open`} {
		if _, err := parseRefs(expr); err == nil {
			t.Errorf("%s: no error; its metric cannot be known", expr)
		}
	}
}
