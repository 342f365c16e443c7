// Package graph holds the one graph walk the configuration needs: finding
// a cycle, among calculated checks as among aliases and CNAMEs.
package graph

// FindCycle returns a cycle along the edges next gives, as the nodes along
// it with the first repeated at the end, or nil. It walks depth first from
// each node in the order given, so the cycle reported is always the same
// one, and visits every node and edge once: linear in the size of the
// graph, whatever its shape.
func FindCycle[T comparable](nodes []T, next func(T) []T) []T {
	const (
		unseen = iota
		onPath
		done
	)
	mark := map[T]int{}
	var path []T
	var walk func(T) []T
	walk = func(n T) []T {
		switch mark[n] {
		case onPath:
			for i, p := range path {
				if p == n {
					return append(append([]T{}, path[i:]...), n)
				}
			}
		case done:
			return nil
		}
		mark[n] = onPath
		path = append(path, n)
		for _, m := range next(n) {
			if cycle := walk(m); cycle != nil {
				return cycle
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	for _, n := range nodes {
		if cycle := walk(n); cycle != nil {
			return cycle
		}
	}
	return nil
}
