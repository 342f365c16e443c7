package healthfailover

import (
	"strconv"

	"github.com/coredns/coredns/plugin"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const subsystem = "healthfailover"

// Labels are server blocks, check names, record names and fixed reasons,
// phases and tiers: cardinality is bounded by the Corefile. Every per-check
// and per-record series carries the block, since two server blocks may use
// the same check name or define the same record.
var (
	checkHealthy = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "check_healthy",
		Help:      "Health of each check: 1 healthy, 0 unhealthy (Route 53's HealthCheckStatus).",
	}, []string{"block", "check"})

	probeDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "probe_duration_seconds",
		Help:      "Duration of each phase of a probe: connect, tls_handshake, first_byte and total (Route 53's ConnectionTime, SSLHandshakeTime, TimeToFirstByte).",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"block", "check", "phase"})

	probesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "probes_total",
		Help:      "Probes by check and result reason (ok for a success).",
	}, []string{"block", "check", "reason"})

	transitionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "transitions_total",
		Help:      "Health transitions by check and the state entered (healthy or unhealthy).",
	}, []string{"block", "check", "to"})

	healthyChildren = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "calculated_healthy_children",
		Help:      "Number of healthy children of each calculated check.",
	}, []string{"block", "check"})

	servingTier = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "record_serving_tier",
		Help:      "The tier each record set answers from (1 primary, 2 secondary, …); 0 when no member is healthy.",
	}, []string{"block", "record", "type"})

	checkForced = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "check_forced",
		Help:      "Overrides of each check: 1 forced up, -1 forced down, 0 none (the probes decide).",
	}, []string{"block", "check"})

	drainedMembers = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "record_drained_members",
		Help:      "Members of each record set drained by an override.",
	}, []string{"block", "record", "type"})

	overrideErrors = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "override_errors",
		Help:      "Lines of the override file set aside because they cannot be read, in its current version.",
	}, []string{"block"})

	healthyMembers = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "record_healthy_members",
		Help:      "Number of healthy members of each record set, across tiers.",
	}, []string{"block", "record", "type"})
)

var tierLabels = func() []string {
	l := make([]string, maxTier+1)
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

// observeProbe records one probe's result and phase timings.
func observeProbe(block, check string, r checker.Result) {
	probesTotal.WithLabelValues(block, check, string(r.Reason)).Inc()
	phases := []struct {
		name string
		d    float64
	}{
		{"connect", r.Phases.Connect.Seconds()},
		{"tls_handshake", r.Phases.TLSHandshake.Seconds()},
		{"first_byte", r.Phases.FirstByte.Seconds()},
		{"total", r.Phases.Total.Seconds()},
	}
	for _, p := range phases {
		if p.d > 0 {
			probeDuration.WithLabelValues(block, check, p.name).Observe(p.d)
		}
	}
}

// observeState sets a check's gauges.
func observeState(block string, st checker.State) {
	checkHealthy.WithLabelValues(block, st.Name).Set(boolFloat(st.Healthy))
	checkForced.WithLabelValues(block, st.Name).Set(forcedFloat(st.Forced))
	if st.Kind == checker.Calculated {
		healthyChildren.WithLabelValues(block, st.Name).Set(float64(st.HealthyChildren))
	}
}

func observeTransition(block string, t checker.Transition) {
	to := "unhealthy"
	if t.To {
		to = "healthy"
	}
	transitionsTotal.WithLabelValues(block, t.Check, to).Inc()
}

// observeAnswer sets a record set's gauges when its answer changes.
func observeAnswer(block string, s *recordSet, a *snapshot) {
	typ := dns.TypeToString[s.qtype]
	servingTier.WithLabelValues(block, s.name, typ).Set(float64(a.tier))
	healthyMembers.WithLabelValues(block, s.name, typ).Set(float64(a.healthyMembers))
	drainedMembers.WithLabelValues(block, s.name, typ).Set(float64(len(a.drained)))
}

func forcedFloat(f checker.Force) float64 {
	switch f {
	case checker.ForceUp:
		return 1
	case checker.ForceDown:
		return -1
	}
	return 0
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
