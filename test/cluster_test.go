package test

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/healthfailover/healthfailover/internal/replicas"
)

// readClusterStatus reads the /status at addr: each check, and what a
// cluster adds to it.
func readClusterStatus(t *testing.T, addr string) replicas.Status {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/status")
	if code != 200 {
		t.Fatalf("/status: %d", code)
	}
	var st replicas.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A replica alone in its cluster (its peers are not there yet) probes and
// answers as without one, says so, and shows its own view.
func TestClusterOfOneAnswersFromItsOwnView(t *testing.T) {
	logs := captureLog(t)
	east := newBackend(t, "US EAST")
	gossip, status, metrics := freeAddr(t), freeAddr(t), freeAddr(t)
	unreachable := freeAddr(t) // nothing listens there
	_, udp, _ := startCoreDNS(t, fmt.Sprintf(`example.org:%d {
		prometheus %s
		healthfailover {
			check east %s/ {
				interval 100ms
				failure_threshold 2
			}
			record www.example.org A {
				primary 127.0.0.1 check east
				secondary 127.0.0.2
			}
			status %s
			cluster {
				bind %s
				join %s
			}
		}
	}`, dnsPort(t), metrics, east.URL(), status, gossip, unreachable))

	ips, _ := addresses(t, "udp", udp, "www.example.org.")
	if !sameAnswer(ips, "127.0.0.1") {
		t.Fatalf("answer %v, want the primary", ips)
	}
	if !strings.Contains(logs.String(), "running alone") || !strings.Contains(logs.String(), "gossip is not encrypted") {
		t.Errorf("the log does not say the replica runs alone, unencrypted:\n%s", logs)
	}
	st := readClusterStatus(t, status)
	c := st.Checks[0]
	if c.Cluster == nil || len(c.Cluster.Observers) != 1 || len(c.Cluster.Views) != 1 || !c.Cluster.Views[0].Fresh || c.Cluster.Views[0].Member != c.Cluster.Observers[0] {
		t.Fatalf("status of a cluster of one: %+v", c.Cluster)
	}

	east.SetUp(false)
	eventually(t, 3*time.Second, "failover on the replica's own view", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.2")
	})

	_, exposition := httpGet(t, "http://"+metrics+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`coredns_healthfailover_cluster_members{bind=%q} 1`, gossip),
		`coredns_healthfailover_check_observers{block="dns://example.org.:`,
		`coredns_healthfailover_cluster_gossip_bytes_total{bind=`,
	} {
		if !strings.Contains(exposition, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	promtoolCheck(t, exposition)
}

// A reload keeps the member (same name, same views, no leave and rejoin);
// a reload without the cluster block leaves and frees the gossip port.
func TestReloadKeepsTheMemberAndDroppingClusterLeaves(t *testing.T) {
	logs := captureLog(t)
	east := newBackend(t, "US EAST")
	port, gossip, status := dnsPort(t), freeAddr(t), freeAddr(t)
	withCluster := func(ttl int) string {
		return reloadCorefile(port, east.URL(), fmt.Sprintf("status %s\ncluster {\n bind %s\n}\nrecord ttl.example.org A {\n ttl %d\n primary 127.0.0.9\n}", status, gossip, ttl))
	}
	i, _, _ := startCoreDNS(t, withCluster(30))
	before := readClusterStatus(t, status).Checks[0].Cluster.Views[0].Member

	i = restart(t, i, withCluster(60))
	after := readClusterStatus(t, status).Checks[0].Cluster
	if after == nil || len(after.Views) != 1 || after.Views[0].Member != before {
		t.Fatalf("after a reload the views are %+v, want only the member %s", after, before)
	}
	if n := strings.Count(logs.String(), "reachable at"); n != 1 {
		t.Errorf("the member started %d times over a reload, want once:\n%s", n, logs)
	}

	i = restart(t, i, reloadCorefile(port, east.URL(), "status "+status))
	udp, _ := inprocess.Addrs(i, 0)
	if ips, _ := addresses(t, "udp", udp, "www.example.org."); !sameAnswer(ips, "127.0.0.1") {
		t.Errorf("after leaving the cluster the answer is %v", ips)
	}
	if c := readClusterStatus(t, status).Checks[0].Cluster; c != nil {
		t.Errorf("still in a cluster after its block was removed: %+v", c)
	}
	eventually(t, 5*time.Second, "the gossip port is free again", func() bool {
		l, err := net.Listen("tcp", gossip)
		if err != nil {
			return false
		}
		l.Close()
		return true
	})
	if !strings.Contains(logs.String(), "left") {
		t.Errorf("no line says the member left:\n%s", logs)
	}
}
