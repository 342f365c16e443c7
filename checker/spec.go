// Package checker probes targets in the background and decides, for every
// health check, healthy or unhealthy, with Route 53's semantics. It knows
// nothing of DNS: the plugin subscribes to its transitions.
package checker

import (
	"slices"
	"strconv"
	"time"
)

// Kind is the protocol a check probes with.
type Kind string

// The kinds of check.
const (
	HTTP       Kind = "http"
	HTTPS      Kind = "https"
	TCP        Kind = "tcp"
	GRPC       Kind = "grpc"  // the gRPC health checking protocol, plain text
	GRPCS      Kind = "grpcs" // the same over TLS
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

	// MinInterval keeps a typo ("1ms") from turning a check into a load
	// test; MaxThreshold is Route 53's.
	MinInterval  = 100 * time.Millisecond
	MaxThreshold = 10
)

// Spec is the definition of one check. Two checks with equal specs are the
// same check: a reload hands the old one's state to the new one.
type Spec struct {
	Name string
	Kind Kind

	// Address is HOST:PORT to connect to (IPv6 in brackets); Path the
	// request path with its query (http, https), "/" when empty, or for
	// grpc and grpcs "/SERVICE", empty to ask for the server as a whole.
	Address string
	Path    string
	// Host is the Host header (the authority for grpc) and the TLS server
	// name; empty means the host of Address.
	Host string
	// Search, when set, must occur in the first SearchLimit bytes of the body.
	Search string
	// Method is GET or HEAD (http, https); Headers are sent with every
	// request; Expect lists the healthy statuses, 200-399 when empty.
	Method  string
	Headers []Header
	Expect  []StatusRange

	Interval time.Duration
	// FastInterval, when set, is how often the check probes while a streak
	// of results that differ from its health is deciding (HAProxy's
	// fastinter); zero probes every Interval throughout.
	FastInterval   time.Duration
	ConnectTimeout time.Duration
	// ResponseTimeout is for http, https, grpc and grpcs; zero for the others.
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

// WithDefaults returns s with every zero option set to its default. A
// default timeout is cut to the interval, since a check never overlaps
// itself; one that was set is left for Validate to judge.
func (s Spec) WithDefaults() Spec {
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = min(DefaultConnectTimeout, s.Interval)
	}
	if s.ResponseTimeout == 0 && s.Kind.exchanges() {
		s.ResponseTimeout = min(DefaultResponseTimeout, s.Interval)
	}
	if s.FailureThreshold == 0 {
		s.FailureThreshold = DefaultFailureThreshold
	}
	if s.SuccessThreshold == 0 {
		s.SuccessThreshold = s.FailureThreshold
	}
	if s.Kind == HTTP || s.Kind == HTTPS {
		if s.Path == "" {
			s.Path = "/"
		}
		if s.Method == "" {
			s.Method = "GET"
		}
		if len(s.Expect) == 0 {
			s.Expect = []StatusRange{{DefaultExpectLow, DefaultExpectHigh}}
		}
	}
	if s.Kind == Calculated && s.HealthyThreshold == 0 {
		s.HealthyThreshold = len(s.Children)
	}
	return s
}

// Equal reports whether two specs define the same check, defaults applied.
func (s Spec) Equal(o Spec) bool {
	s, o = s.WithDefaults(), o.WithDefaults()
	return s.Name == o.Name &&
		s.Kind == o.Kind &&
		s.Address == o.Address &&
		s.Path == o.Path &&
		s.Host == o.Host &&
		s.Search == o.Search &&
		s.Method == o.Method &&
		slices.Equal(s.Headers, o.Headers) &&
		slices.Equal(s.Expect, o.Expect) &&
		s.Interval == o.Interval &&
		s.FastInterval == o.FastInterval &&
		s.ConnectTimeout == o.ConnectTimeout &&
		s.ResponseTimeout == o.ResponseTimeout &&
		s.FailureThreshold == o.FailureThreshold &&
		s.SuccessThreshold == o.SuccessThreshold &&
		s.TLSVerify == o.TLSVerify &&
		s.Invert == o.Invert &&
		s.Disable == o.Disable &&
		slices.Equal(s.Children, o.Children) &&
		s.HealthyThreshold == o.HealthyThreshold
}

// exchanges reports whether a kind sends a request and waits for an
// answer after connecting, within the response timeout.
func (k Kind) exchanges() bool { return k == HTTP || k == HTTPS || k == GRPC || k == GRPCS }

// Header is one request header of an http or https check.
type Header struct{ Name, Value string }

// StatusRange is Low-High of HTTP statuses, both included; one status has
// Low == High.
type StatusRange struct{ Low, High int }

// Without expect, an http check takes Route 53's 2xx and 3xx for healthy.
const (
	DefaultExpectLow  = 200
	DefaultExpectHigh = 399
)

func (r StatusRange) String() string {
	if r.Low == r.High {
		return strconv.Itoa(r.Low)
	}
	return strconv.Itoa(r.Low) + "-" + strconv.Itoa(r.High)
}
