package healthfailover

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// overrides are what an override file says, line by line:
//
//	check NAME up|down|auto [REASON...]
//	drain RECORD TYPE VALUE [REASON...]
//
// with # comments. A line that cannot be read is set aside with its error;
// the others apply.
type overrides struct {
	checks map[string]checkForce
	drains map[*recordSet]map[string]drain
	errors []string // "FILE:LINE: what is wrong; line ignored"
}

// checkForce is one `check` line.
type checkForce struct {
	force  checker.Force
	by     string
	reason string
}

// parseOverrides reads an override file against a configuration: its
// check names and its record sets.
func parseOverrides(file string, text []byte, isCheck func(string) bool, t *table) overrides {
	o := overrides{checks: map[string]checkForce{}, drains: map[*recordSet]map[string]drain{}}
	seen := map[string]int{}
	scanner := bufio.NewScanner(bytes.NewReader(text))
	for line := 1; scanner.Scan(); line++ {
		text, _, _ := strings.Cut(scanner.Text(), "#")
		words := strings.Fields(text)
		if len(words) == 0 {
			continue
		}
		by := fmt.Sprintf("%s:%d", file, line)
		st, err := parseStatement(words, by, isCheck, t)
		if first, dup := seen[st.key]; err == nil && dup {
			err = fmt.Errorf("%s is given twice (first at line %d)", st.key, first)
		}
		if err != nil {
			o.errors = append(o.errors, fmt.Sprintf("%s: %v; line ignored", by, err))
			continue
		}
		seen[st.key] = line
		switch {
		case st.set != nil:
			if o.drains[st.set] == nil {
				o.drains[st.set] = map[string]drain{}
			}
			o.drains[st.set][st.value] = drain{by: by, reason: st.reason}
		case st.force != "auto":
			o.checks[st.check] = checkForce{force: st.force, by: by, reason: st.reason}
		}
	}
	if err := scanner.Err(); err != nil {
		o.errors = append(o.errors, fmt.Sprintf("%s: %v", file, err))
	}
	return o
}

// statement is one line of an override file.
type statement struct {
	key    string // what it overrides, to find a second line for the same
	check  string
	force  checker.Force // up, down or "auto"
	set    *recordSet    // a drain's
	value  string
	reason string
}

func parseStatement(words []string, by string, isCheck func(string) bool, t *table) (statement, error) {
	switch words[0] {
	case "check":
		if len(words) < 3 {
			return statement{}, fmt.Errorf("want check NAME up|down|auto [REASON...]")
		}
		st := statement{key: "check " + words[1], check: words[1], force: checker.Force(words[2]), reason: strings.Join(words[3:], " ")}
		if !isCheck(st.check) {
			return st, fmt.Errorf("unknown check %q", st.check)
		}
		if st.force != checker.ForceUp && st.force != checker.ForceDown && st.force != "auto" {
			return st, fmt.Errorf("check %s %q: want up, down or auto", st.check, words[2])
		}
		return st, nil
	case "drain":
		if len(words) < 4 {
			return statement{}, fmt.Errorf("want drain RECORD TYPE VALUE [REASON...]")
		}
		set, value, rest, err := drainTarget(words[1:], t)
		if err != nil {
			return statement{}, err
		}
		key := fmt.Sprintf("drain %s %s %s", set.name, dns.TypeToString[set.qtype], value)
		return statement{key: key, set: set, value: value, reason: strings.Join(rest, " ")}, nil
	}
	return statement{}, fmt.Errorf("unknown statement %q (want check or drain)", words[0])
}

// drainTarget finds the set and member a drain names: RECORD TYPE VALUE,
// where VALUE may be `alias NAME`.
func drainTarget(words []string, t *table) (*recordSet, string, []string, error) {
	name := fqdn(words[0])
	qtype, ok := dns.StringToType[strings.ToUpper(words[1])]
	if !ok {
		return nil, "", nil, fmt.Errorf("drain %s: unknown type %q", words[0], words[1])
	}
	set := t.byName[name].of(qtype)
	if set == nil {
		return nil, "", nil, fmt.Errorf("drain: no record set %s %s", name, words[1])
	}
	value, rest := valueOf(qtype, words[2:])
	if qtype == dns.TypeTXT {
		value = strings.TrimSuffix(strings.TrimPrefix(value, `"`), `"`)
	}
	if value == "alias" && len(rest) > 0 {
		value, rest = "alias "+fqdn(rest[0]), rest[1:]
	} else if v, err := memberValue(qtype, value); err == nil {
		value = v
	}
	for _, m := range set.members {
		if m.value == value {
			return set, value, rest, nil
		}
	}
	return nil, "", nil, fmt.Errorf("drain: %s %s has no member %s", name, words[1], value)
}

// valueOf splits a drain's words into the member's value and the reason:
// SRV and MX values have several words, a TXT value is one quoted string
// (runs of spaces in it read as one).
func valueOf(qtype uint16, words []string) (string, []string) {
	n := valueWords(qtype)
	if qtype == dns.TypeTXT && strings.HasPrefix(words[0], `"`) {
		for i, w := range words {
			if strings.HasSuffix(w, `"`) && (i > 0 || len(w) > 1) {
				n = i + 1
				break
			}
		}
	}
	if words[0] == "alias" || n > len(words) {
		n = 1
	}
	return strings.Join(words[:n], " "), words[n:]
}

// of is the set of one type at a name, nil for none.
func (n nameSets) of(qtype uint16) *recordSet {
	switch qtype {
	case dns.TypeA:
		return n.a
	case dns.TypeAAAA:
		return n.aaaa
	case dns.TypeCNAME:
		return n.cname
	}
	return n.other(qtype)
}
