package checker

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestNewRefuses(t *testing.T) {
	web := func(name string) Spec { return Spec{Name: name, Kind: HTTP, Address: "127.0.0.1:80"} }
	tcp := func(name string) Spec { return Spec{Name: name, Kind: TCP, Address: "127.0.0.1:22"} }
	rpc := func(name string) Spec { return Spec{Name: name, Kind: GRPC, Address: "127.0.0.1:50051"} }
	calc := func(name string, threshold int, children ...string) Spec {
		return Spec{Name: name, Kind: Calculated, Children: children, HealthyThreshold: threshold}
	}
	with := func(s Spec, change func(*Spec)) Spec {
		change(&s)
		return s
	}
	cases := []struct {
		name  string
		specs []Spec
		field string // the option at fault, as SpecError names it
		err   string
	}{
		{"no name", []Spec{{Kind: TCP, Address: "127.0.0.1:22"}}, "", "a check needs a name"},
		{"twice", []Spec{web("a"), web("b"), web("a")}, "", `check "a": defined twice`},
		{"kind", []Spec{{Name: "a", Kind: "ftp", Address: "127.0.0.1:21"}}, "", `check "a": unknown kind "ftp"`},
		{"no kind", []Spec{{Name: "a", Address: "127.0.0.1:21"}}, "", `check "a": unknown kind ""`},
		{"address", []Spec{{Name: "a", Kind: TCP, Address: "127.0.0.1"}}, "address", `check "a": address "127.0.0.1" is not HOST:PORT`},
		{"port", []Spec{{Name: "a", Kind: TCP, Address: "127.0.0.1:99999"}}, "address",
			`check "a": port "99999" of address "127.0.0.1:99999" is not in 1-65535`},
		{"path", []Spec{with(web("a"), func(s *Spec) { s.Path = "/a b" })},
			"path", `check "a": path "/a b" must start with / and contain no white space`},
		{"host", []Spec{with(web("a"), func(s *Spec) { s.Host = "a\r\nX-Evil: 1" })},
			"host", `check "a": host "a\r\nX-Evil: 1" is not a host name`},
		{"threshold negative", []Spec{with(tcp("a"), func(s *Spec) { s.FailureThreshold = -1 })},
			"failure_threshold", `check "a": failure_threshold -1 is not in 1-10`},
		{"threshold high", []Spec{with(tcp("a"), func(s *Spec) { s.SuccessThreshold = 11 })},
			"success_threshold", `check "a": success_threshold 11 is not in 1-10`},
		{"interval negative", []Spec{with(tcp("a"), func(s *Spec) { s.Interval = -1 })},
			"interval", `check "a": interval -1ns is shorter than the minimum 100ms`},
		{"interval short", []Spec{with(tcp("a"), func(s *Spec) { s.Interval = 10 * time.Millisecond })},
			"interval", `check "a": interval 10ms is shorter than the minimum 100ms`},
		{"connect timeout negative", []Spec{with(tcp("a"), func(s *Spec) { s.ConnectTimeout = -time.Second })},
			"connect_timeout", `check "a": connect_timeout -1s is not positive`},
		{"connect timeout long", []Spec{with(tcp("a"), func(s *Spec) { s.Interval, s.ConnectTimeout = time.Second, 2*time.Second })},
			"connect_timeout", `check "a": connect_timeout 2s is longer than the interval 1s`},
		{"response timeout long", []Spec{with(web("a"), func(s *Spec) { s.Interval, s.ResponseTimeout = time.Second, 2*time.Second })},
			"response_timeout", `check "a": response_timeout 2s is longer than the interval 1s`},
		{"response timeout on tcp", []Spec{with(tcp("a"), func(s *Spec) { s.ResponseTimeout = time.Second })},
			"response_timeout", `check "a": response_timeout is for http, https, grpc and grpcs checks, not tcp`},
		{"search on tcp", []Spec{with(tcp("a"), func(s *Spec) { s.Search = "ok" })},
			"search", `check "a": search is for http and https checks, not tcp`},
		{"path on tcp", []Spec{with(tcp("a"), func(s *Spec) { s.Path = "/x" })}, "path", `check "a": a tcp check has no path`},
		{"tls_verify on http", []Spec{with(web("a"), func(s *Spec) { s.TLSVerify = true })},
			"tls_verify", `check "a": tls_verify is for https and grpcs checks, not http`},
		{"tls_verify on grpc", []Spec{with(rpc("a"), func(s *Spec) { s.TLSVerify = true })},
			"tls_verify", `check "a": tls_verify is for https and grpcs checks, not grpc`},
		{"grpc service with a slash", []Spec{with(rpc("a"), func(s *Spec) { s.Path = "/shop/Cart" })},
			"path", `check "a": service "shop/Cart" is not a gRPC service name (like pkg.Service)`},
		{"grpc service with a query", []Spec{with(rpc("a"), func(s *Spec) { s.Path = "/shop.Cart?x" })},
			"path", `check "a": service "shop.Cart?x" is not a gRPC service name (like pkg.Service)`},
		{"grpc service with an empty name", []Spec{with(rpc("a"), func(s *Spec) { s.Path = "/shop..Cart" })},
			"path", `check "a": service "shop..Cart" is not a gRPC service name (like pkg.Service)`},
		{"search on grpc", []Spec{with(rpc("a"), func(s *Spec) { s.Search = "ok" })},
			"search", `check "a": search is for http and https checks, not grpc`},
		{"method on grpcs", []Spec{with(rpc("a"), func(s *Spec) { s.Kind, s.Method = GRPCS, "GET" })},
			"method", `check "a": method is for http and https checks, not grpcs`},
		{"header on tcp", []Spec{with(tcp("a"), func(s *Spec) { s.Headers = []Header{{"X-A", "1"}} })},
			"header", `check "a": header is for http and https checks, not tcp`},
		{"expect on grpc", []Spec{with(rpc("a"), func(s *Spec) { s.Expect = []StatusRange{{200, 200}} })},
			"expect", `check "a": expect is for http and https checks, not grpc`},
		{"method POST", []Spec{with(web("a"), func(s *Spec) { s.Method = "POST" })},
			"method", `check "a": method "POST" is not GET or HEAD`},
		{"method in lower case", []Spec{with(web("a"), func(s *Spec) { s.Method = "get" })},
			"method", `check "a": method "get" is not GET or HEAD`},
		{"search with HEAD", []Spec{with(web("a"), func(s *Spec) { s.Method, s.Search = "HEAD", "ok" })},
			"method", `check "a": search needs a body, which a HEAD request does not get`},
		{"header Host", []Spec{with(web("a"), func(s *Spec) { s.Headers = []Header{{"X-A", "1"}, {"host", "x"}} })},
			"header", `check "a": header Host: set it with host, which also sets the TLS server name`},
		{"header Connection", []Spec{with(web("a"), func(s *Spec) { s.Headers = []Header{{"Connection", "keep-alive"}} })},
			"header", `check "a": header Connection: the probe sets it (one request, no body, then the connection closes)`},
		{"header name", []Spec{with(web("a"), func(s *Spec) { s.Headers = []Header{{"X A", "1"}} })},
			"header", `check "a": header name "X A" is not an HTTP field name`},
		{"header value", []Spec{with(web("a"), func(s *Spec) { s.Headers = []Header{{"X-A", "1\r\nX-Evil: 1"}} })},
			"header", `check "a": header X-A: value "1\r\nX-Evil: 1" contains a line break or NUL`},
		{"expect 99", []Spec{with(web("a"), func(s *Spec) { s.Expect = []StatusRange{{200, 200}, {99, 99}} })},
			"expect", `check "a": expect 99 is not within the statuses 100-599`},
		{"expect 600", []Spec{with(web("a"), func(s *Spec) { s.Expect = []StatusRange{{600, 600}} })},
			"expect", `check "a": expect 600 is not within the statuses 100-599`},
		{"expect backwards", []Spec{with(web("a"), func(s *Spec) { s.Expect = []StatusRange{{302, 300}} })},
			"expect", `check "a": expect 302-300 is backwards: write 300-302`},
		{"fast_interval short", []Spec{with(web("a"), func(s *Spec) { s.FastInterval = 50 * time.Millisecond })},
			"fast_interval", `check "a": fast_interval 50ms is shorter than the minimum 100ms`},
		{"fast_interval negative", []Spec{with(tcp("a"), func(s *Spec) { s.FastInterval = -time.Second })},
			"fast_interval", `check "a": fast_interval -1s is shorter than the minimum 100ms`},
		{"fast_interval long", []Spec{with(rpc("a"), func(s *Spec) { s.Interval, s.FastInterval = time.Second, 2*time.Second })},
			"fast_interval", `check "a": fast_interval 2s is longer than the interval 1s`},
		{"healthy_threshold on http", []Spec{with(web("a"), func(s *Spec) { s.HealthyThreshold = 1 })},
			"healthy_threshold", `check "a": healthy_threshold is for calculated checks`},
		{"children on tcp", []Spec{web("a"), with(tcp("b"), func(s *Spec) { s.Children = []string{"a"} })},
			"children", `check "b": only a calculated check has children`},
		{"calculated with an address", []Spec{web("a"), with(calc("c", 1, "a"), func(s *Spec) { s.Address = "127.0.0.1:80" })},
			"", `check "c": a calculated check probes nothing: no address, path, host, search, method, header, expect, fast_interval or tls_verify`},
		{"calculated with fast_interval", []Spec{web("a"), with(calc("c", 1, "a"), func(s *Spec) { s.FastInterval = time.Second })},
			"", `check "c": a calculated check probes nothing: no address, path, host, search, method, header, expect, fast_interval or tls_verify`},
		{"missing child", []Spec{web("a"), calc("c", 1, "a", "b")}, "children", `check "c": unknown child check "b"`},
		{"child twice", []Spec{web("a"), calc("c", 1, "a", "a")}, "children", `check "c": child check "a" is listed twice`},
		{"no children", []Spec{calc("c", 0)}, "children", `check "c": a calculated check needs children`},
		{"healthy threshold high", []Spec{web("a"), web("b"), calc("c", 3, "a", "b")},
			"healthy_threshold", `check "c": healthy_threshold 3 is not in 1-2 (the number of children)`},
		{"healthy threshold low", []Spec{web("a"), calc("c", -1, "a")},
			"healthy_threshold", `check "c": healthy_threshold -1 is not in 1-1 (the number of children)`},
		{"cycle", []Spec{web("w"), calc("a", 1, "w", "b"), calc("b", 1, "a")},
			"children", `check "a": in a cycle of calculated checks: a -> b -> a`},
		{"long cycle", []Spec{calc("x", 1, "y"), calc("y", 1, "z"), calc("z", 1, "x")},
			"children", `check "x": in a cycle of calculated checks: x -> y -> z -> x`},
		{"self", []Spec{calc("a", 1, "a")}, "children", `check "a": in a cycle of calculated checks: a -> a`},
	}
	for _, tc := range cases {
		c, err := New(tc.specs, Options{})
		if err == nil || err.Error() != tc.err {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.err)
		}
		var se *SpecError
		if !errors.As(err, &se) || se.Field != tc.field {
			t.Errorf("%s: error %#v, want a *SpecError with field %q", tc.name, err, tc.field)
		}
		if c != nil {
			t.Errorf("%s: a Checker with an error", tc.name)
		}
	}

	// Of a repeatable option, the value at fault is named by its index, so
	// that the parser can point at its line.
	var se *SpecError
	_, err := New([]Spec{with(web("a"), func(s *Spec) { s.Headers = []Header{{"X-A", "1"}, {"Host", "x"}} })}, Options{})
	if !errors.As(err, &se) || se.Field != "header" || se.Index != 1 {
		t.Errorf("header Host second: error %#v, want field header and index 1", err)
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

// Default timeouts fit a short interval; ones that were set are kept, for
// Validate to judge. A tcp check has no response timeout.
func TestWithDefaults(t *testing.T) {
	for _, tc := range []struct {
		in, want Spec
	}{
		{Spec{Kind: HTTP}, Spec{Kind: HTTP, Path: "/", Method: "GET", Expect: []StatusRange{{200, 399}}, Interval: 10 * time.Second,
			ConnectTimeout: 4 * time.Second, ResponseTimeout: 2 * time.Second, FailureThreshold: 3, SuccessThreshold: 3}},
		{Spec{Kind: HTTPS, Interval: time.Second, FailureThreshold: 2, Method: "HEAD", Expect: []StatusRange{{204, 204}}},
			Spec{Kind: HTTPS, Path: "/", Method: "HEAD", Expect: []StatusRange{{204, 204}}, Interval: time.Second,
				ConnectTimeout: time.Second, ResponseTimeout: time.Second, FailureThreshold: 2, SuccessThreshold: 2}},
		{Spec{Kind: GRPC, Interval: time.Second}, Spec{Kind: GRPC, Interval: time.Second,
			ConnectTimeout: time.Second, ResponseTimeout: time.Second, FailureThreshold: 3, SuccessThreshold: 3}},
		{Spec{Kind: TCP, Interval: 3 * time.Second, ConnectTimeout: 5 * time.Second}, Spec{Kind: TCP, Interval: 3 * time.Second,
			ConnectTimeout: 5 * time.Second, FailureThreshold: 3, SuccessThreshold: 3}},
		{Spec{Kind: Calculated, Children: []string{"a", "b"}}, Spec{Kind: Calculated, Children: []string{"a", "b"},
			HealthyThreshold: 2, Interval: 10 * time.Second, ConnectTimeout: 4 * time.Second, FailureThreshold: 3, SuccessThreshold: 3}},
	} {
		if got := tc.in.WithDefaults(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v with defaults:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

// Two specs are equal when every field is, defaults applied; a difference
// in any one field makes them unequal. The fields are walked by reflection,
// so that a field added to Spec and forgotten in Equal fails here.
func TestSpecEqual(t *testing.T) {
	base := Spec{Name: "a", Kind: HTTPS, Address: "127.0.0.1:443", Path: "/health", Host: "www.example.org",
		Search: "ok", Method: "HEAD", Headers: []Header{{"X-A", "1"}, {"X-B", "2"}}, Expect: []StatusRange{{200, 204}, {300, 302}},
		Interval: 30 * time.Second, FastInterval: time.Second, ConnectTimeout: 3 * time.Second, ResponseTimeout: time.Second,
		FailureThreshold: 5, SuccessThreshold: 2, TLSVerify: true, Invert: true, Disable: true,
		Children: []string{"x", "y"}, HealthyThreshold: 1}
	same := base
	same.Children = []string{"x", "y"} // another slice, the same names
	if !base.Equal(same) || !same.Equal(base) {
		t.Fatal("equal specs are unequal")
	}
	if !(Spec{Kind: HTTP}).Equal(Spec{Kind: HTTP, Path: "/", Method: "GET", Expect: []StatusRange{{200, 399}},
		Interval: DefaultInterval, FailureThreshold: 3}) {
		t.Error("a default written out differs from the default left out")
	}

	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		other := base
		other.Children = []string{"x", "y"}
		f := reflect.ValueOf(&other).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Slice:
			// The same values in another order.
			n := f.Len()
			reversed := reflect.MakeSlice(f.Type(), n, n)
			for j := range n {
				reversed.Index(j).Set(f.Index(n - 1 - j))
			}
			f.Set(reversed)
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", v.Type().Field(i).Name, f.Kind())
		}
		if base.Equal(other) || other.Equal(base) {
			t.Errorf("specs that differ in %s are equal", v.Type().Field(i).Name)
		}
	}
}
