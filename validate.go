package healthfailover

import (
	"errors"
	"strconv"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/healthfailover/healthfailover/internal/graph"
	"github.com/miekg/dns"
)

// validate checks what can only be checked once the whole block is read:
// references between checks and record sets, and where names live.
func (cfg *config) validate(checkPos map[string]position) error {
	// The checker owns every rule of what a check may be; an error names
	// the check, and so its line.
	if err := checker.Validate(cfg.checks); err != nil {
		var se *checker.SpecError
		if errors.As(err, &se) {
			return checkPos[se.Check].errorf("%v", err)
		}
		return err
	}
	checks := map[string]checker.Spec{}
	for _, s := range cfg.checks {
		checks[s.Name] = s
	}

	type key struct {
		name  string
		qtype uint16
	}
	sets := map[key]*setSpec{}
	types := map[string][]*setSpec{}
	for _, set := range cfg.sets {
		if plugin.Zones(cfg.zones).Matches(set.name) == "" {
			return set.pos.errorf("record %s is outside the zones of this block (%s)", set.name, strings.Join(cfg.zones, " "))
		}
		k := key{set.name, set.qtype}
		if first, dup := sets[k]; dup {
			return set.pos.errorf("record %s %s is defined twice (first at line %d)", set.name, dns.TypeToString[set.qtype], first.pos.line)
		}
		for _, other := range types[set.name] {
			if other.qtype == dns.TypeCNAME || set.qtype == dns.TypeCNAME {
				return set.pos.errorf("record %s: a CNAME cannot share its name with another record (line %d)", set.name, other.pos.line)
			}
		}
		sets[k] = set
		types[set.name] = append(types[set.name], set)
	}

	for _, set := range cfg.sets {
		weighted := 0
		firstAt := map[memberSpec]position{}
		for _, m := range set.members {
			// The same value twice in one tier would answer twice.
			same := memberSpec{tier: m.tier, value: m.value, alias: m.alias}
			if first, dup := firstAt[same]; dup {
				return m.pos.errorf("record %s: %s %s is given twice (first at line %d)", set.name, tierWord(m.tier), m.valueWord(), first.line)
			}
			firstAt[same] = m.pos
			if m.check != "" {
				if _, ok := checks[m.check]; !ok {
					return m.pos.errorf("record %s: unknown check %q", set.name, m.check)
				}
			}
			if m.weight >= 0 {
				weighted++
			}
			if set.qtype == dns.TypeCNAME && m.value == set.name {
				return m.pos.errorf("record %s: a CNAME cannot point to itself", set.name)
			}
			if m.alias == "" {
				continue
			}
			if _, ok := sets[key{m.alias, set.qtype}]; !ok {
				if len(types[m.alias]) > 0 {
					return m.pos.errorf("record %s %s: alias %s is a record set of another type", set.name, dns.TypeToString[set.qtype], m.alias)
				}
				return m.pos.errorf("record %s: unknown alias %s (no record %s %s in this block)", set.name, m.alias, m.alias, dns.TypeToString[set.qtype])
			}
		}
		if weighted > 0 && weighted < len(set.members) {
			return set.pos.errorf("record %s: give every member a weight, or none", set.name)
		}
	}

	lookup := func(name string, qtype uint16) *setSpec { return sets[key{name, qtype}] }
	aliases := func(s *setSpec) []*setSpec {
		var next []*setSpec
		for _, m := range s.members {
			if m.alias != "" {
				next = append(next, lookup(m.alias, s.qtype))
			}
		}
		return next
	}
	if cycle := graph.FindCycle(cfg.sets, aliases); cycle != nil {
		return cycle[0].pos.errorf("alias cycle: %s", joinNames(cycle))
	}
	// CNAMEs that point at each other would send resolvers round in circles.
	cnameTargets := func(s *setSpec) []*setSpec {
		var next []*setSpec
		for _, m := range s.members {
			if t := lookup(m.value, dns.TypeCNAME); s.qtype == dns.TypeCNAME && m.value != "" && t != nil {
				next = append(next, t)
			}
		}
		return next
	}
	if cycle := graph.FindCycle(cfg.sets, cnameTargets); cycle != nil {
		return cycle[0].pos.errorf("CNAME loop: %s", joinNames(cycle))
	}
	// A wildcard CNAME to a name it answers itself is a loop of one.
	exists := map[string]bool{}
	for name := range types {
		for p := name; p != ""; p = parentName(p) {
			exists[p] = true
		}
	}
	for _, set := range cfg.sets {
		parent, wild := strings.CutPrefix(set.name, "*.")
		if !wild || set.qtype != dns.TypeCNAME {
			continue
		}
		for _, m := range set.members {
			if m.value != "" && wildcardAnswers(parent, m.value, exists) {
				return m.pos.errorf("record %s: a wildcard CNAME cannot point to a name it answers itself (%s)", set.name, m.value)
			}
		}
	}
	// Each alias answers with a copy of its target's answer: a tree of
	// aliases that fans out (a diamond on every level doubles it) would
	// copy without end. Bound what one set can expand to.
	expanded := map[*setSpec]int{}
	for _, set := range cfg.sets {
		if n := expandedSize(set, lookup, expanded); n > maxExpanded {
			return set.pos.errorf("record %s: its aliases expand to more than %d records; alias a set directly rather than through fanning chains", set.name, maxExpanded)
		}
	}
	return nil
}

// wildcardAnswers reports whether the wildcard below parent answers name:
// name is below parent, does not exist, and neither does any name between.
func wildcardAnswers(parent, name string, exists map[string]bool) bool {
	if !dns.IsSubDomain(parent, name) {
		return false
	}
	for p := name; p != parent && p != ""; p = parentName(p) {
		if exists[p] {
			return false
		}
	}
	return name != parent
}

// maxExpanded bounds how many records a set may reach through its aliases.
const maxExpanded = 256

// expandedSize counts the records a set reaches through its aliases,
// memoised and saturating just above maxExpanded, so it is linear.
func expandedSize(s *setSpec, lookup func(string, uint16) *setSpec, memo map[*setSpec]int) int {
	if n, ok := memo[s]; ok {
		return n
	}
	n := 0
	for _, m := range s.members {
		if m.alias == "" {
			n++
		} else {
			n += expandedSize(lookup(m.alias, s.qtype), lookup, memo)
		}
		n = min(n, maxExpanded+1)
	}
	memo[s] = n
	return n
}

// tierWord is how a tier is written in the Corefile.
func tierWord(tier int) string {
	switch tier {
	case 1:
		return "primary"
	case 2:
		return "secondary"
	}
	return "tier " + strconv.Itoa(tier)
}

// valueWord is how a member's value is written in the Corefile.
func (m memberSpec) valueWord() string {
	if m.alias != "" {
		return "alias " + m.alias
	}
	return m.value
}

func joinNames(sets []*setSpec) string {
	names := make([]string, len(sets))
	for i, s := range sets {
		names[i] = s.name
	}
	return strings.Join(names, " -> ")
}
