package replicas

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestFreePortsDiffer(t *testing.T) {
	p, err := FreePorts("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, port := range []int{p.DNS, p.Ready, p.Metrics, p.Status, p.Gossip} {
		if port < 20000 || seen[port] {
			t.Fatalf("ports %+v: want five different ones from 20000 on", p)
		}
		seen[port] = true
	}
}

func TestServerBlock(t *testing.T) {
	r := &Replica{IP: "127.0.71.1", Ports: Ports{DNS: 5300, Ready: 8181, Metrics: 9153, Status: 9154, Gossip: 7946}}
	got := r.ServerBlock(Block{Zone: "example.org", Status: true, Cluster: true, Join: []string{"127.0.71.1:7946", "127.0.71.2:7946"}, Options: []string{"observers 2"}, Body: "        check east http://127.0.0.9/health\n"})
	want := `example.org:5300 {
    bind 127.0.71.1
    ready 127.0.71.1:8181
    prometheus 127.0.71.1:9153
    healthfailover example.org {
        status 127.0.71.1:9154
        cluster {
            bind 127.0.71.1:7946
            join 127.0.71.1:7946 127.0.71.2:7946
            observers 2
        }
        check east http://127.0.0.9/health

    }
}
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// In a namespace it serves on 127.0.0.1 and gossips on its IP; without
	// a cluster there is no cluster block, nor a status without Status.
	r.Serve = "127.0.0.1"
	got = r.ServerBlock(Block{Zone: "bench.test", Body: "        record www.bench.test A {\n        }"})
	for _, line := range []string{"bench.test:5300 {\n", "    bind 127.0.0.1\n", "    ready 127.0.0.1:8181\n", "    prometheus 127.0.0.1:9153\n", "        }\n    }\n}\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("no %q in\n%s", line, got)
		}
	}
	if strings.Contains(got, "cluster") || strings.Contains(got, "status") {
		t.Errorf("a cluster or status block without asking:\n%s", got)
	}
	if r.DNSAddr() != "127.0.0.1:5300" || r.ReadyAddr() != "127.0.0.1:8181" || r.GossipAddr() != "127.0.71.1:7946" {
		t.Errorf("addresses %s %s %s", r.DNSAddr(), r.ReadyAddr(), r.GossipAddr())
	}
}

func TestMetricSum(t *testing.T) {
	text := `# HELP coredns_healthfailover_probes_total Probes.
coredns_healthfailover_probes_total{check="east",result="ok"} 3
coredns_healthfailover_probes_total{check="east",result="fail"} 2
coredns_healthfailover_probes_total{check="west",result="ok"} 7
coredns_healthfailover_probes_total_other 100
coredns_healthfailover_cluster_members 4
`
	for _, c := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"coredns_healthfailover_probes_total", nil, 12},
		{"coredns_healthfailover_probes_total", []string{`check="east"`}, 5},
		{"coredns_healthfailover_probes_total", []string{`check="east"`, `result="ok"`}, 3},
		{"coredns_healthfailover_cluster_members", nil, 4},
		{"coredns_healthfailover_absent", nil, 0},
	} {
		if got, err := MetricSum(strings.NewReader(text), c.name, c.match...); err != nil || got != c.want {
			t.Errorf("%s %v: %v, %v; want %v", c.name, c.match, got, err, c.want)
		}
	}
}

// serve answers path with body on 127.0.0.1, and returns the port.
func serve(t *testing.T, path, body string) int {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(body)) })
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}

func TestMetricAndCheckStatus(t *testing.T) {
	r := &Replica{IP: "127.0.0.1"}
	r.Ports.Metrics = serve(t, "/metrics", "coredns_healthfailover_cluster_members{bind=\"x\"} 3\n")
	if m, err := r.Metric("coredns_healthfailover_cluster_members"); err != nil || m != 3 {
		t.Errorf("members %v, %v", m, err)
	}
	r.Ports.Status = serve(t, "/status", `{"checks": [
		{"block": "dns://other.org.:53", "name": "east", "healthy": true, "cluster": {"observers": ["b"], "views": []}},
		{"block": "dns://example.org.:53", "name": "east", "healthy": true, "cluster": {"observers": ["a", "b"],
			"views": [{"member": "a", "observer": true, "fresh": true, "healthy": true, "message": "200 OK", "age_seconds": 0.5}]}},
		{"block": "dns://example.org.:53", "name": "lonely", "healthy": true}
	]}`)
	c, err := r.CheckStatus("example.org", "east")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Cluster.Observers) != 2 {
		t.Errorf("observers %v, want those of example.org", c.Cluster.Observers)
	}
	if v, ok := c.View("a"); !ok || !v.Fresh || !v.Healthy || v.Message != "200 OK" || v.AgeSeconds != 0.5 {
		t.Errorf("view of a: %+v, %v", v, ok)
	}
	if _, ok := c.View("b"); ok {
		t.Errorf("a view of b, which has none")
	}
	if _, err := r.CheckStatus("example.org", "lonely"); err == nil || !strings.Contains(err.Error(), "no cluster section") {
		t.Errorf("a check without a cluster section: %v", err)
	}
	if _, err := r.CheckStatus("example.org", "west"); err == nil {
		t.Errorf("no error for a check that is not there")
	}
}
