package cluster

import (
	"hash/fnv"
	"slices"
)

// observersOf picks the n members that probe a check, by rendezvous
// (highest random weight) hashing of the check's key over the member
// names: every member computes the same choice from the same member list,
// and a member joining or leaving moves only the checks it wins or held.
// With n members or fewer, all observe.
func observersOf(check string, members []string, n int) []string {
	if len(members) <= n {
		return members
	}
	type scored struct {
		name  string
		score uint64
	}
	all := make([]scored, len(members))
	for i, m := range members {
		all[i] = scored{m, weight(m, check)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return compareStrings(a.name, b.name)
	})
	out := make([]string, n)
	for i := range out {
		out[i] = all[i].name
	}
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// weight is the member's score for a check. FNV alone clusters on similar
// names (replica-1, replica-2), so its result goes through a finalising mix.
func weight(member, check string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{0})
	h.Write([]byte(check))
	return mix(h.Sum64())
}

// mix is the finaliser of SplitMix64.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
