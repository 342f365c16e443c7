package healthfailover

import (
	"fmt"
	"hash/fnv"
)

// serial derives the SOA serial from the configuration, so that replicas
// with the same Corefile agree on the SOA and a restart does not change
// it, while a changed block gets a new serial. Positions are left out: a
// comment added above a record changes no answer.
func (cfg *config) serial() uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "zones %q ns %q fall %q\n", cfg.zones, cfg.ns, cfg.fall.Zones)
	for _, s := range cfg.checks {
		fmt.Fprintf(h, "check %#v\n", s.WithDefaults())
	}
	for _, s := range cfg.sets {
		fmt.Fprintf(h, "record %s %d %d %d\n", s.name, s.qtype, s.ttl, s.onAllDown)
		if s.degradedTTL != nil {
			fmt.Fprintf(h, "degraded_ttl %d\n", *s.degradedTTL)
		}
		for _, m := range s.members {
			fmt.Fprintf(h, "member %d %q %q %q %d\n", m.tier, m.value, m.alias, m.check, m.weight)
		}
	}
	if serial := h.Sum32(); serial != 0 {
		return serial
	}
	return 1 // some secondaries treat 0 as unset
}
