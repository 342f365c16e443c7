package healthfailover

import (
	"github.com/coredns/coredns/plugin"
	"github.com/healthfailover/healthfailover/cluster"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The cluster's metrics: the node's counters are read at scrape time from
// the nodes running now, labelled by their bind address; the agreement of
// each check is set when it changes.
var (
	checkObservers = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "check_observers",
		Help:      "Fresh views of each check counted by this member's cluster agreement.",
	}, []string{"block", "check"})

	checkObserversHealthy = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "check_observers_healthy",
		Help:      "How many of the counted views of each check say healthy.",
	}, []string{"block", "check"})
)

func init() { prometheus.MustRegister(nodeCollector{}) }

func observeAgreement(block, check string, a cluster.Agreed) {
	checkObservers.WithLabelValues(block, check).Set(float64(a.Views))
	checkObserversHealthy.WithLabelValues(block, check).Set(float64(a.HealthyViews))
}

var (
	membersDesc       = clusterDesc("cluster_members", "Alive members of the cluster, this one included.")
	viewsSentDesc     = clusterDesc("cluster_views_sent_total", "Views of checks this member sent, directly and on the gossip.")
	viewsReceivedDesc = clusterDesc("cluster_views_received_total", "Views of checks received from other members and taken.")
	droppedDesc       = clusterDesc("cluster_messages_dropped_total", "Messages and views dropped: malformed, stale (older than one held) or from no member.", "reason")
	gossipBytesDesc   = clusterDesc("cluster_gossip_bytes_total", "Bytes of gossip (memberlist's and ours, UDP and TCP) by direction.", "direction")
)

func clusterDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, subsystem, name), help, append([]string{"bind"}, labels...), nil)
}

// nodeCollector reports the counters of every running node.
type nodeCollector struct{}

func (nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{membersDesc, viewsSentDesc, viewsReceivedDesc, droppedDesc, gossipBytesDesc} {
		ch <- d
	}
}

func (nodeCollector) Collect(ch chan<- prometheus.Metric) {
	nodes.Lock()
	running := make([]*cluster.Node, 0, len(nodes.byBind))
	for _, s := range nodes.byBind {
		running = append(running, s.node)
	}
	nodes.Unlock()
	for _, n := range running {
		bind, st := n.Bind(), n.Stats()
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{bind}, labels...)...)
		}
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(len(n.Members())), bind)
		counter(viewsSentDesc, st.ViewsSent.Load())
		counter(viewsReceivedDesc, st.ViewsReceived.Load())
		counter(droppedDesc, st.Malformed.Load(), "malformed")
		counter(droppedDesc, st.Stale.Load(), "stale")
		counter(droppedDesc, st.Unknown.Load(), "unknown_member")
		counter(gossipBytesDesc, st.BytesSent.Load(), "sent")
		counter(gossipBytesDesc, st.BytesReceived.Load(), "received")
	}
}
