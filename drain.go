package healthfailover

import "maps"

// drain is an override that takes one member out of one set's answers.
type drain struct {
	by     string // FILE:LINE
	reason string
}

// setDrained replaces the drained members and rebuilds the sets whose
// drains changed, and the sets aliasing them; it returns the drains that
// were added and removed, for the log.
func (t *table) setDrained(next map[*recordSet]map[string]drain) (added, removed []drainChange) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var changed []*recordSet
	for _, s := range t.sets {
		before, after := t.drained[s], next[s]
		if maps.Equal(before, after) {
			continue
		}
		changed = append(changed, s)
		for v, d := range after {
			if old, ok := before[v]; !ok || old != d {
				added = append(added, drainChange{set: s, value: v, drain: d})
			}
		}
		for v, d := range before {
			if _, ok := after[v]; !ok {
				removed = append(removed, drainChange{set: s, value: v, drain: d})
			}
		}
	}
	t.drained = next
	t.rebuild(changed)
	return added, removed
}

// drainChange is one drain that came or went.
type drainChange struct {
	set   *recordSet
	value string
	drain drain
}
