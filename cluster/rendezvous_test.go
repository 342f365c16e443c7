package cluster

import (
	"fmt"
	"slices"
	"testing"
)

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("coredns-%d", i)
	}
	return out
}

func TestFewerMembersThanObserversAllObserve(t *testing.T) {
	members := names(2)
	if got := observersOf("east", members, 3); !slices.Equal(got, members) {
		t.Errorf("observers %v, want all of %v", got, members)
	}
}

func TestObserversAreTheSameWhateverTheOrderOfMembers(t *testing.T) {
	members := names(7)
	reversed := slices.Clone(members)
	slices.Reverse(reversed)
	for i := range 100 {
		check := fmt.Sprintf("check-%d", i)
		a, b := observersOf(check, members, 3), observersOf(check, reversed, 3)
		if !slices.Equal(a, b) {
			t.Fatalf("%s: %v from one order, %v from another", check, a, b)
		}
		if len(a) != 3 {
			t.Fatalf("%s: %d observers, want 3", check, len(a))
		}
	}
}

// A member that joins takes over only checks it wins, and one that leaves
// moves only the checks it held: the others keep their observers, so a
// rolling update does not reshuffle all probing.
func TestAJoinOrALeaveMovesOnlyThatMembersChecks(t *testing.T) {
	before := names(6)
	after := append(slices.Clone(before), "coredns-new")
	load := map[string]int{}
	for i := range 1000 {
		check := fmt.Sprintf("check-%d", i)
		old, now := observersOf(check, before, 2), observersOf(check, after, 2)
		for _, o := range now {
			load[o]++
		}
		for _, o := range old {
			if !slices.Contains(now, o) && !slices.Contains(now, "coredns-new") {
				t.Fatalf("%s: %s lost the check to %v without the new member among them", check, o, now)
			}
		}
		// And when the new member leaves again, the old choice is back.
		if back := observersOf(check, before, 2); !slices.Equal(back, old) {
			t.Fatalf("%s: %v after the leave, %v before the join", check, back, old)
		}
	}
	// 2,000 observations over 7 members: about 286 each; rendezvous
	// hashing spreads them, a poor hash would not.
	for m, n := range load {
		if n < 200 || n > 380 {
			t.Errorf("%s observes %d of 1000 checks, want about 286", m, n)
		}
	}
}
