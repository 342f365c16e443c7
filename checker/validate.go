package checker

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/healthfailover/healthfailover/internal/graph"
)

// Every rule of what a check may be is here, and only here: the plugin's
// parser reads a Corefile into Specs and leaves judging them to Validate,
// so that what it accepts the checker runs, and a program using the
// checker without CoreDNS is held to the same rules.

// SpecError is what Validate refuses: which check, which of its options
// (empty when the check as a whole), and what is wrong. Field is spelt as
// configuration files spell options: "response_timeout".
type SpecError struct {
	Check string
	Field string
	// Index is which value of a repeatable option is at fault (the
	// Index-th header), from 0.
	Index  int
	Reason string
}

func (e *SpecError) Error() string {
	if e.Check == "" {
		return e.Reason
	}
	return fmt.Sprintf("check %q: %s", e.Check, e.Reason)
}

// Validate refuses a set of specs that cannot run, with a *SpecError: each
// spec as Spec.Validate does, then names that are missing or defined twice,
// children that are not in the set, and cycles of calculated checks.
func Validate(specs []Spec) error {
	byName := make(map[string]Spec, len(specs))
	for _, s := range specs {
		if s.Name == "" {
			return &SpecError{Reason: "a check needs a name"}
		}
		if _, dup := byName[s.Name]; dup {
			return &SpecError{Check: s.Name, Reason: "defined twice"}
		}
		byName[s.Name] = s
	}
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return err
		}
		for _, child := range s.Children {
			if _, ok := byName[child]; !ok {
				return &SpecError{Check: s.Name, Field: "children", Reason: fmt.Sprintf("unknown child check %q", child)}
			}
		}
	}
	if cycle := findCycle(specs); cycle != nil {
		return &SpecError{Check: cycle[0], Field: "children",
			Reason: "in a cycle of calculated checks: " + strings.Join(cycle, " -> ")}
	}
	return nil
}

// Validate refuses a spec, defaults applied first, that cannot run
// whatever the other checks are, with a *SpecError.
func (s Spec) Validate() error {
	s = s.WithDefaults()
	var field, reason string
	var index int
	switch s.Kind {
	case HTTP, HTTPS, TCP, GRPC, GRPCS:
		field, index, reason = probeRule(s)
	case Calculated:
		field, reason = calculatedRule(s)
	default:
		reason = fmt.Sprintf("unknown kind %q", s.Kind)
	}
	if reason == "" {
		return nil
	}
	return &SpecError{Check: s.Name, Field: field, Index: index, Reason: reason}
}

// probeRule returns the option of a check that probes that breaks a rule,
// which of its values when it is repeatable, and what is wrong with it;
// empty when none does.
func probeRule(s Spec) (field string, index int, reason string) {
	field, reason = commonRule(s)
	if reason != "" {
		return field, 0, reason
	}
	http := s.Kind == HTTP || s.Kind == HTTPS
	if !http {
		for _, o := range []struct {
			field string
			set   bool
		}{{"search", s.Search != ""}, {"method", s.Method != ""}, {"header", len(s.Headers) > 0}, {"expect", len(s.Expect) > 0}} {
			if o.set {
				return o.field, 0, fmt.Sprintf("%s is for http and https checks, not %s", o.field, s.Kind)
			}
		}
	}
	switch s.Kind {
	case TCP:
		switch {
		case s.ResponseTimeout != 0:
			return "response_timeout", 0, "response_timeout is for http, https, grpc and grpcs checks, not tcp"
		case s.Path != "":
			return "path", 0, "a tcp check has no path"
		}
		return "", 0, ""
	case GRPC, GRPCS:
		if s.Path != "" && !validService(strings.TrimPrefix(s.Path, "/")) {
			return "path", 0, fmt.Sprintf("service %q is not a gRPC service name (like pkg.Service)", strings.TrimPrefix(s.Path, "/"))
		}
	}
	if field, reason := timeoutRule("response_timeout", s.ResponseTimeout, s.Interval); reason != "" {
		return field, 0, reason
	}
	if strings.ContainsAny(s.Host, " \t\r\n/") {
		return "host", 0, fmt.Sprintf("host %q is not a host name", s.Host)
	}
	if !http {
		return "", 0, ""
	}
	// The path and host go verbatim into the request: nothing may end a
	// line or a field early.
	if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, " \t\r\n") {
		return "path", 0, fmt.Sprintf("path %q must start with / and contain no white space", s.Path)
	}
	return httpRule(s)
}

// commonRule is probeRule for what every check that probes shares.
func commonRule(s Spec) (field, reason string) {
	if len(s.Children) > 0 {
		return "children", "only a calculated check has children"
	}
	if s.HealthyThreshold != 0 {
		return "healthy_threshold", "healthy_threshold is for calculated checks"
	}
	host, port, err := net.SplitHostPort(s.Address)
	if err != nil || port == "" || !validHost(host) {
		return "address", fmt.Sprintf("address %q is not HOST:PORT", s.Address)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "address", fmt.Sprintf("port %q of address %q is not in 1-65535", port, s.Address)
	}
	if s.Interval < MinInterval {
		return "interval", fmt.Sprintf("interval %s is shorter than the minimum %s", s.Interval, MinInterval)
	}
	if s.FastInterval != 0 {
		switch {
		case s.FastInterval < MinInterval:
			return "fast_interval", fmt.Sprintf("fast_interval %s is shorter than the minimum %s", s.FastInterval, MinInterval)
		case s.FastInterval > s.Interval:
			return "fast_interval", fmt.Sprintf("fast_interval %s is longer than the interval %s", s.FastInterval, s.Interval)
		}
	}
	// A check never overlaps itself: a timeout longer than the interval
	// would skip ticks rather than probe every interval.
	if field, reason := timeoutRule("connect_timeout", s.ConnectTimeout, s.Interval); reason != "" {
		return field, reason
	}
	for _, t := range []struct {
		field string
		n     int
	}{{"failure_threshold", s.FailureThreshold}, {"success_threshold", s.SuccessThreshold}} {
		if t.n < 1 || t.n > MaxThreshold {
			return t.field, fmt.Sprintf("%s %d is not in 1-%d", t.field, t.n, MaxThreshold)
		}
	}
	if s.TLSVerify && s.Kind != HTTPS && s.Kind != GRPCS {
		return "tls_verify", fmt.Sprintf("tls_verify is for https and grpcs checks, not %s", s.Kind)
	}
	return "", ""
}

// httpRule judges the options of http and https checks alone.
func httpRule(s Spec) (field string, index int, reason string) {
	switch {
	case s.Method != "GET" && s.Method != "HEAD":
		return "method", 0, fmt.Sprintf("method %q is not GET or HEAD", s.Method)
	case s.Method == "HEAD" && s.Search != "":
		return "method", 0, "search needs a body, which a HEAD request does not get"
	}
	for i, h := range s.Headers {
		if reason := headerRule(h); reason != "" {
			return "header", i, reason
		}
	}
	for _, r := range s.Expect {
		switch {
		case r.Low < 100 || r.High > 599:
			return "expect", 0, fmt.Sprintf("expect %s is not within the statuses 100-599", r)
		case r.Low > r.High:
			return "expect", 0, fmt.Sprintf("expect %s is backwards: write %d-%d", r, r.High, r.Low)
		}
	}
	return "", 0, ""
}

// headerRule refuses a header that could not be sent as it is, and those
// the probe writes itself.
func headerRule(h Header) string {
	if h.Name == "" || strings.IndexFunc(h.Name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		return fmt.Sprintf("header name %q is not an HTTP field name", h.Name)
	}
	if strings.EqualFold(h.Name, "Host") {
		return "header Host: set it with host, which also sets the TLS server name"
	}
	for _, own := range []string{"Connection", "Content-Length", "Transfer-Encoding"} {
		if strings.EqualFold(h.Name, own) {
			return fmt.Sprintf("header %s: the probe sets it (one request, no body, then the connection closes)", own)
		}
	}
	if strings.ContainsAny(h.Value, "\r\n\x00") {
		return fmt.Sprintf("header %s: value %q contains a line break or NUL", h.Name, h.Value)
	}
	return ""
}

// isTokenChar reports whether r may be in an HTTP field name (RFC 9110 tchar).
func isTokenChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

// validService reports whether s is a protobuf service's full name:
// identifiers joined by dots.
func validService(s string) bool {
	for _, ident := range strings.Split(s, ".") {
		if ident == "" || ident[0] >= '0' && ident[0] <= '9' {
			return false
		}
		for _, r := range ident {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
				return false
			}
		}
	}
	return true
}

func timeoutRule(field string, timeout, interval time.Duration) (string, string) {
	switch {
	case timeout <= 0:
		return field, fmt.Sprintf("%s %s is not positive", field, timeout)
	case timeout > interval:
		return field, fmt.Sprintf("%s %s is longer than the interval %s", field, timeout, interval)
	}
	return "", ""
}

// calculatedRule is probeRule for a calculated check, which probes nothing
// and judges by its children.
func calculatedRule(s Spec) (field, reason string) {
	if s.Address != "" || s.Path != "" || s.Host != "" || s.Search != "" || s.TLSVerify ||
		s.Method != "" || len(s.Headers) > 0 || len(s.Expect) > 0 || s.FastInterval != 0 {
		return "", "a calculated check probes nothing: no address, path, host, search, method, header, expect, fast_interval or tls_verify"
	}
	if len(s.Children) == 0 {
		return "children", "a calculated check needs children"
	}
	seen := make(map[string]bool, len(s.Children))
	for _, child := range s.Children {
		if seen[child] {
			return "children", fmt.Sprintf("child check %q is listed twice", child)
		}
		seen[child] = true
	}
	if s.HealthyThreshold < 1 || s.HealthyThreshold > len(s.Children) {
		return "healthy_threshold", fmt.Sprintf("healthy_threshold %d is not in 1-%d (the number of children)",
			s.HealthyThreshold, len(s.Children))
	}
	return "", ""
}

// findCycle returns a cycle among calculated checks, as the names along it
// with the first repeated at the end, or nil. It walks in definition order,
// so the cycle reported is always the same one.
func findCycle(specs []Spec) []string {
	byName := make(map[string]Spec, len(specs))
	names := make([]string, len(specs))
	for i, s := range specs {
		byName[s.Name] = s
		names[i] = s.Name
	}
	return graph.FindCycle(names, func(name string) []string { return byName[name].Children })
}

// validHost reports whether h is an IP address or a host name: labels of
// letters, digits, hyphens and underscores.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
