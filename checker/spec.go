// Package checker probes targets in the background and decides, for every
// health check, healthy or unhealthy, with Route 53's semantics. It knows
// nothing of DNS: the plugin subscribes to its transitions.
package checker

import (
	"fmt"
	"time"
)

// Kind is the protocol a check probes with.
type Kind string

// The kinds of check.
const (
	HTTP       Kind = "http"
	HTTPS      Kind = "https"
	TCP        Kind = "tcp"
	Calculated Kind = "calculated"
)

// Defaults, as Route 53 has them.
const (
	DefaultInterval         = 10 * time.Second
	DefaultConnectTimeout   = 4 * time.Second
	DefaultResponseTimeout  = 2 * time.Second
	DefaultFailureThreshold = 3
	// SearchLimit is how much of a body string matching looks at.
	SearchLimit = 5120
)

// Spec is the definition of one check. Two checks with equal specs are the
// same check: a reload hands the old one's state to the new one.
type Spec struct {
	Name string
	Kind Kind

	// Address is HOST:PORT to connect to (IPv6 in brackets); Path the
	// request path with its query (http, https), "/" when empty.
	Address string
	Path    string
	// Host is the Host header and the TLS server name; empty means the
	// host of Address.
	Host string
	// Search, when set, must occur in the first SearchLimit bytes of the body.
	Search string

	Interval         time.Duration
	ConnectTimeout   time.Duration
	ResponseTimeout  time.Duration
	FailureThreshold int
	SuccessThreshold int // 0 means FailureThreshold

	TLSVerify bool
	Invert    bool
	Disable   bool

	// Children and HealthyThreshold are for calculated checks;
	// HealthyThreshold 0 means all children.
	Children         []string
	HealthyThreshold int
}

// WithDefaults returns s with every zero option set to its default.
func (s Spec) WithDefaults() Spec {
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.ResponseTimeout == 0 {
		s.ResponseTimeout = DefaultResponseTimeout
	}
	if s.FailureThreshold == 0 {
		s.FailureThreshold = DefaultFailureThreshold
	}
	if s.SuccessThreshold == 0 {
		s.SuccessThreshold = s.FailureThreshold
	}
	if s.Path == "" && (s.Kind == HTTP || s.Kind == HTTPS) {
		s.Path = "/"
	}
	if s.Kind == Calculated && s.HealthyThreshold == 0 {
		s.HealthyThreshold = len(s.Children)
	}
	return s
}

// Equal reports whether two specs define the same check.
func (s Spec) Equal(o Spec) bool {
	return fmt.Sprintf("%#v", s.WithDefaults()) == fmt.Sprintf("%#v", o.WithDefaults())
}
