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
	Check  string
	Field  string
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
	switch s.Kind {
	case HTTP, HTTPS, TCP:
		field, reason = probeRule(s)
	case Calculated:
		field, reason = calculatedRule(s)
	default:
		reason = fmt.Sprintf("unknown kind %q", s.Kind)
	}
	if reason == "" {
		return nil
	}
	return &SpecError{Check: s.Name, Field: field, Reason: reason}
}

// probeRule returns the option of a check that probes that breaks a rule,
// and what is wrong with it; empty when none does.
func probeRule(s Spec) (field, reason string) {
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
	if s.TLSVerify && s.Kind != HTTPS {
		return "tls_verify", fmt.Sprintf("tls_verify is for https checks, not %s", s.Kind)
	}
	if s.Kind == TCP {
		switch {
		case s.Search != "":
			return "search", "search is for http and https checks, not tcp"
		case s.ResponseTimeout != 0:
			return "response_timeout", "response_timeout is for http and https checks, not tcp"
		case s.Path != "":
			return "path", "a tcp check has no path"
		}
		return "", ""
	}
	if field, reason := timeoutRule("response_timeout", s.ResponseTimeout, s.Interval); reason != "" {
		return field, reason
	}
	// The path and host go verbatim into the request: nothing may end a
	// line or a field early.
	if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, " \t\r\n") {
		return "path", fmt.Sprintf("path %q must start with / and contain no white space", s.Path)
	}
	if strings.ContainsAny(s.Host, " \t\r\n/") {
		return "host", fmt.Sprintf("host %q is not a host name", s.Host)
	}
	return "", ""
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
	if s.Address != "" || s.Path != "" || s.Host != "" || s.Search != "" || s.TLSVerify {
		return "", "a calculated check probes nothing: no address, path, host, search or tls_verify"
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
