package cluster

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEvaluateAll is one member's periodic re-evaluation of 1,000
// checks in a cluster of 7, every check with fresh views of its 3
// observers: the work the node loop does every second.
func BenchmarkEvaluateAll(b *testing.B) {
	n := &Node{name: "m0", alive: map[string]string{}, views: map[string]map[string]*entry{}}
	for i := range 7 {
		n.alive[fmt.Sprintf("m%d", i)] = ""
	}
	n.members = sortedNames(n.alive)
	var checks []Check
	now := time.Now()
	for i := range 1000 {
		c := Check{Name: fmt.Sprintf("check-%d", i), Key: fmt.Sprintf("dns://example.org.:53 check-%d 0", i), Interval: 10 * time.Second}
		checks = append(checks, c)
		for _, o := range observersOf(c.Key, n.members, 3) {
			n.store(View{Check: c.Key, Origin: o, Seq: 1, Healthy: true}, now)
		}
	}
	g := &Group{node: n, observers: 3, quorum: DefaultQuorum, onAgreed: func(string, Agreed) {},
		byName: map[string]*groupCheck{}, byKey: map[string]*groupCheck{}}
	for _, c := range checks {
		gc := &groupCheck{Check: c, staleAfter: staleAfter(c.Interval)}
		g.byName[c.Name], g.byKey[c.Key] = gc, gc
		g.order = append(g.order, gc)
	}
	g.evaluateAll()
	b.ReportAllocs()
	for b.Loop() {
		g.evaluateAll()
	}
}
