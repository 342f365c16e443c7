package healthfailover

import (
	"sync"
	"time"

	"github.com/healthfailover/healthfailover/checker"
	"github.com/healthfailover/healthfailover/cluster"
)

// nodes are the gossip nodes of this process, by bind address: the blocks
// that name one address share its node, and a reload hands it to the new
// configuration (which acquires it before the old one releases it), so
// that the member neither leaves nor loses its views. The last release
// leaves the cluster.
var nodes = struct {
	sync.Mutex
	byBind map[string]*sharedNode
}{byBind: map[string]*sharedNode{}}

type sharedNode struct {
	node  *cluster.Node
	users int
}

func acquireNode(cfg cluster.Config) (*cluster.Node, error) {
	nodes.Lock()
	defer nodes.Unlock()
	if s := nodes.byBind[cfg.Bind]; s != nil {
		s.users++
		s.node.Update(withLogger(cfg))
		return s.node, nil
	}
	n, err := cluster.Start(withLogger(cfg))
	if err != nil {
		return nil, err
	}
	nodes.byBind[cfg.Bind] = &sharedNode{node: n, users: 1}
	return n, nil
}

func releaseNode(n *cluster.Node) {
	nodes.Lock()
	s := nodes.byBind[n.Bind()]
	last := s != nil && s.node == n && s.users == 1
	if s != nil && s.node == n {
		s.users--
		if last {
			delete(nodes.byBind, n.Bind())
		}
	}
	nodes.Unlock()
	if last {
		n.Stop()
	}
}

func withLogger(cfg cluster.Config) cluster.Config {
	cfg.Logger = log
	return cfg
}

// newProbes is the checker of a block in a cluster: it probes the checks
// this member observes, and publishes its view after every probe.
func newProbes(h *HealthFailover, specs []checker.Spec) (*checker.Checker, error) {
	block := h.table.block
	var probes *checker.Checker
	var err error
	probes, err = checker.New(probingSpecs(specs), checker.Options{
		Probes: func(check string) bool { return h.group.Load().Probes(check) },
		OnResult: func(check string, r checker.Result) {
			observeProbe(block, check, r)
			h.history.record(check, r)
			if st, ok := probes.State(check); ok {
				h.group.Load().Publish(check, st.Healthy, st.Since, string(r.Reason), st.Last.Message)
			}
		},
	})
	return probes, err
}

// probingSpecs are the checks that probe: calculated and disabled checks
// are decided by every member on its own.
func probingSpecs(specs []checker.Spec) []checker.Spec {
	var out []checker.Spec
	for _, s := range specs {
		if s.Kind != checker.Calculated && !s.Disable {
			out = append(out, s)
		}
	}
	return out
}

// agreed takes the cluster's decision on a check into the health the
// answers follow; the checker turns a change into a transition.
func (h *HealthFailover) agreed(check string, a cluster.Agreed) {
	h.checks.Set(check, checker.Result{OK: a.Healthy, Reason: checker.Reason(a.Reason), Message: a.Message, At: time.Now()})
	observeAgreement(h.table.block, check, a)
}
