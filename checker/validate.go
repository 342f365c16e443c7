package checker

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/healthfailover/healthfailover/internal/graph"
)

// Validate refuses a set of specs (defaults applied) that cannot run. The
// plugin's parser calls it on each check it reads, so that what it accepts
// the checker runs; New calls it too, since the checker is usable without
// CoreDNS.
func Validate(specs []Spec) error {
	byName := make(map[string]Spec, len(specs))
	for _, s := range specs {
		if s.Name == "" {
			return errors.New("a check needs a name")
		}
		if _, dup := byName[s.Name]; dup {
			return fmt.Errorf("check %q is defined twice", s.Name)
		}
		byName[s.Name] = s
	}
	for _, s := range specs {
		if err := validateSpec(s, byName); err != nil {
			return fmt.Errorf("check %q: %v", s.Name, err)
		}
	}
	if cycle := FindCycle(specs); cycle != nil {
		return fmt.Errorf("calculated check cycle: %s", strings.Join(cycle, " -> "))
	}
	return nil
}

func validateSpec(s Spec, byName map[string]Spec) error {
	switch s.Kind {
	case HTTP, HTTPS, TCP:
		return validateProbe(s)
	case Calculated:
		if len(s.Children) == 0 {
			return errors.New("a calculated check needs children")
		}
		seen := map[string]bool{}
		for _, child := range s.Children {
			if _, ok := byName[child]; !ok {
				return fmt.Errorf("unknown child check %q", child)
			}
			if seen[child] {
				return fmt.Errorf("child check %q is listed twice", child)
			}
			seen[child] = true
		}
		if s.HealthyThreshold < 1 || s.HealthyThreshold > len(s.Children) {
			return fmt.Errorf("healthy threshold %d is not between 1 and %d (the number of children)", s.HealthyThreshold, len(s.Children))
		}
		return nil
	default:
		return fmt.Errorf("unknown kind %q", s.Kind)
	}
}

func validateProbe(s Spec) error {
	if len(s.Children) > 0 {
		return errors.New("only a calculated check has children")
	}
	host, port, err := net.SplitHostPort(s.Address)
	if err != nil || port == "" || !validHost(host) {
		return fmt.Errorf("address %q is not HOST:PORT", s.Address)
	}
	if s.Interval <= 0 || s.ConnectTimeout <= 0 || s.ResponseTimeout <= 0 {
		return errors.New("interval and timeouts must be positive")
	}
	if s.FailureThreshold < 1 || s.SuccessThreshold < 1 {
		return errors.New("thresholds must be at least 1")
	}
	if s.Kind == TCP {
		return nil
	}
	// The path and host go verbatim into the request: nothing may end a
	// line or a field early.
	if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, " \t\r\n") {
		return fmt.Errorf("path %q must start with / and contain no white space", s.Path)
	}
	if strings.ContainsAny(s.Host, " \t\r\n/") {
		return fmt.Errorf("host %q is not a host name", s.Host)
	}
	return nil
}

// FindCycle returns a cycle among calculated checks, as the names along it
// with the first repeated at the end, or nil. It walks in definition order,
// so the cycle reported is always the same one. The plugin's parser uses it
// to refuse a cycle with the Corefile line of its first check.
func FindCycle(specs []Spec) []string {
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
