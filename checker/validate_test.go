package checker

import (
	"testing"
)

func TestNewRefuses(t *testing.T) {
	web := func(name string) Spec { return Spec{Name: name, Kind: HTTP, Address: "127.0.0.1:80"} }
	calc := func(name string, threshold int, children ...string) Spec {
		return Spec{Name: name, Kind: Calculated, Children: children, HealthyThreshold: threshold}
	}
	cases := []struct {
		name  string
		specs []Spec
		err   string
	}{
		{"no name", []Spec{{Kind: TCP, Address: "127.0.0.1:22"}}, "a check needs a name"},
		{"twice", []Spec{web("a"), web("b"), web("a")}, `check "a" is defined twice`},
		{"kind", []Spec{{Name: "a", Kind: "ftp", Address: "127.0.0.1:21"}}, `check "a": unknown kind "ftp"`},
		{"no kind", []Spec{{Name: "a", Address: "127.0.0.1:21"}}, `check "a": unknown kind ""`},
		{"address", []Spec{{Name: "a", Kind: TCP, Address: "127.0.0.1"}}, `check "a": address "127.0.0.1" is not HOST:PORT`},
		{"path", []Spec{{Name: "a", Kind: HTTP, Address: "127.0.0.1:80", Path: "/a b"}},
			`check "a": path "/a b" must start with / and contain no white space`},
		{"host", []Spec{{Name: "a", Kind: HTTP, Address: "127.0.0.1:80", Host: "a\r\nX-Evil: 1"}},
			`check "a": host "a\r\nX-Evil: 1" is not a host name`},
		{"threshold", []Spec{{Name: "a", Kind: TCP, Address: "127.0.0.1:22", FailureThreshold: -1}},
			`check "a": thresholds must be at least 1`},
		{"interval", []Spec{{Name: "a", Kind: TCP, Address: "127.0.0.1:22", Interval: -1}},
			`check "a": interval and timeouts must be positive`},
		{"missing child", []Spec{web("a"), calc("c", 1, "a", "b")}, `check "c": unknown child check "b"`},
		{"child twice", []Spec{web("a"), calc("c", 1, "a", "a")}, `check "c": child check "a" is listed twice`},
		{"no children", []Spec{calc("c", 0)}, `check "c": a calculated check needs children`},
		{"threshold high", []Spec{web("a"), web("b"), calc("c", 3, "a", "b")},
			`check "c": healthy threshold 3 is not between 1 and 2 (the number of children)`},
		{"threshold low", []Spec{web("a"), calc("c", -1, "a")},
			`check "c": healthy threshold -1 is not between 1 and 1 (the number of children)`},
		{"cycle", []Spec{web("w"), calc("a", 1, "w", "b"), calc("b", 1, "a")}, "calculated check cycle: a -> b -> a"},
		{"long cycle", []Spec{calc("x", 1, "y"), calc("y", 1, "z"), calc("z", 1, "x")}, "calculated check cycle: x -> y -> z -> x"},
		{"self", []Spec{calc("a", 1, "a")}, "calculated check cycle: a -> a"},
	}
	for _, tc := range cases {
		c, err := New(tc.specs, Options{})
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.err)
		}
		if c != nil {
			t.Errorf("%s: a Checker with an error", tc.name)
		}
	}

	// A diamond is not a cycle.
	if _, err := New([]Spec{web("a"), web("b"), calc("l", 1, "a", "b"), calc("r", 1, "a", "b"), calc("top", 2, "l", "r")}, Options{}); err != nil {
		t.Fatal(err)
	}
	// No checks at all is fine, and ready.
	c, err := New(nil, Options{})
	if err != nil || !c.Ready() || len(c.Snapshot()) != 0 {
		t.Fatalf("empty: %v", err)
	}
}
