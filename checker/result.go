package checker

import "time"

// Reason is why a probe failed, from a small fixed set so that metrics can
// label by it. The human-readable detail is in Result.Message.
type Reason string

// The reasons a probe ends with.
const (
	ReasonOK             Reason = "ok"
	ReasonRefused        Reason = "connect_refused"  // "connect: connection refused"
	ReasonConnectTimeout Reason = "connect_timeout"  // "connect timeout after 4s"
	ReasonConnectError   Reason = "connect_error"    // any other dial error, "connect: no route to host"
	ReasonTLS            Reason = "tls_error"        // "tls: …"
	ReasonTimeout        Reason = "response_timeout" // "no response within 2s"
	ReasonStatus         Reason = "bad_status"       // "status 503"
	ReasonSearch         Reason = "search_not_found" // "search string not found in the first 5120 bytes"
	ReasonProtocol       Reason = "protocol_error"   // a reply that is not HTTP, a reset mid-response
	ReasonChildren       Reason = "children"         // calculated: "2 of 3 children healthy, 3 needed"
	ReasonDisabled       Reason = "disabled"
	ReasonInverted       Reason = "inverted" // an inverted check whose probe succeeded

	// The gRPC health checking protocol's answers other than SERVING, and
	// RPCs that fail ("grpc: Unimplemented: unknown service grpc.health.v1.Health").
	ReasonGRPCNotServing     Reason = "grpc_not_serving"     // "grpc: NOT_SERVING"
	ReasonGRPCServiceUnknown Reason = "grpc_service_unknown" // "grpc: SERVICE_UNKNOWN", or the RPC's NotFound
	ReasonGRPCUnknown        Reason = "grpc_unknown"         // "grpc: UNKNOWN"
	ReasonGRPCError          Reason = "grpc_error"           // "grpc: CODE: message"
)

// Reasons lists every Reason, for metrics that want to pre-declare series.
var Reasons = []Reason{ReasonOK, ReasonRefused, ReasonConnectTimeout, ReasonConnectError, ReasonTLS,
	ReasonTimeout, ReasonStatus, ReasonSearch, ReasonProtocol, ReasonChildren, ReasonDisabled, ReasonInverted,
	ReasonGRPCNotServing, ReasonGRPCServiceUnknown, ReasonGRPCUnknown, ReasonGRPCError}

// Phases are the durations of one probe's phases; zero when a phase was not reached.
type Phases struct {
	Connect      time.Duration
	TLSHandshake time.Duration
	FirstByte    time.Duration // from the request written to the first response byte
	Total        time.Duration
}

// Result is the outcome of one probe, after invert and disable are applied.
type Result struct {
	OK      bool
	Reason  Reason
	Message string // "connect: connection refused", "status 503", …
	Status  int    // HTTP status, 0 when none (tcp, grpc)
	At      time.Time
	Phases  Phases
}

// State is what the checker knows of one check.
type State struct {
	Name string
	Kind Kind
	// Healthy is the health answers follow: Probed, unless an operator
	// forced the check (Forced).
	Healthy bool
	// Probed is the health the probes decided (by the thresholds, or for
	// an External check, as Set; for a calculated check, its children).
	Probed bool
	// Forced is ForceUp or ForceDown while an override holds the check;
	// ForcedBy says where (a file and line) and ForceReason why.
	Forced      Force
	ForcedBy    string
	ForceReason string
	// Checked is false until the first probe (for a calculated check: every
	// child's first probe) has finished.
	Checked bool
	Since   time.Time // when Healthy last changed (or the check started)
	Last    Result

	ConsecutiveSuccesses int
	ConsecutiveFailures  int
	Successes            uint64
	Failures             uint64
	Transitions          uint64

	// HealthyChildren is, for a calculated check, how many children are healthy.
	HealthyChildren int
}

// Transition is one change of a check's health.
type Transition struct {
	Check  string
	From   bool
	To     bool
	Reason Reason
	// Message explains it: "connect: connection refused after 2 consecutive failures".
	Message string
	At      time.Time
	// Inherited marks the health a check brings from the previous
	// configuration on reload: the answers must follow it, but it is not a
	// new change of health to log or count.
	Inherited bool
	// State is the check's state right after the change, so that a
	// subscriber has what it needs without calling back into the Checker.
	State State
}
