package healthfailover

import (
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// validate checks what can only be checked once the whole block is read:
// references between checks and record sets, and where names live.
func (cfg *config) validate(checkPos map[string]position) error {
	checks := map[string]checker.Spec{}
	for _, s := range cfg.checks {
		checks[s.Name] = s
	}
	for _, s := range cfg.checks {
		for _, child := range s.Children {
			if _, ok := checks[child]; !ok {
				return checkPos[s.Name].errorf("calculated check %q: unknown child check %q", s.Name, child)
			}
		}
	}
	if cycle := checker.FindCycle(cfg.checks); cycle != nil {
		return checkPos[cycle[0]].errorf("calculated check cycle: %s", strings.Join(cycle, " -> "))
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
		for _, m := range set.members {
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

	for _, set := range cfg.sets {
		if cycle := aliasCycle(set, func(name string) *setSpec { return sets[key{name, set.qtype}] }); cycle != nil {
			return set.pos.errorf("alias cycle: %s", strings.Join(cycle, " -> "))
		}
	}
	return nil
}

// aliasCycle follows the aliases of one set and returns a cycle through it, or nil.
func aliasCycle(start *setSpec, lookup func(string) *setSpec) []string {
	var path []string
	var walk func(*setSpec) []string
	onPath := map[string]bool{}
	walk = func(s *setSpec) []string {
		if onPath[s.name] {
			if s.name == start.name {
				return append(append([]string{}, path...), s.name)
			}
			return nil // a cycle not through start is reported from its own members
		}
		onPath[s.name] = true
		path = append(path, s.name)
		for _, m := range s.members {
			if m.alias == "" {
				continue
			}
			if cycle := walk(lookup(m.alias)); cycle != nil {
				return cycle
			}
		}
		path = path[:len(path)-1]
		onPath[s.name] = false
		return nil
	}
	return walk(start)
}
