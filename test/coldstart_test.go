package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
)

// A server that starts while its primaries are down answers its very first
// queries with the secondaries: the first probes finish before it listens,
// so no resolver caches a dead primary for the record's TTL. Several record
// sets, each with its own check, so that a server answering before its
// probes are done cannot pass by luck.
func TestColdStartAnswersFromKnownHealth(t *testing.T) {
	const sets = 5
	var corefile strings.Builder
	corefile.WriteString("example.org:0 {\n\thealthfailover {\n")
	for i := range sets {
		fmt.Fprintf(&corefile, "\t\tcheck down%d tcp://%s {\n\t\t\tinterval 10s\n\t\t}\n", i, fakebackend.NewClosedPort(t))
		fmt.Fprintf(&corefile, "\t\trecord www%d.example.org A {\n\t\t\tprimary 127.0.0.1 check down%d\n\t\t\tsecondary 127.0.0.2\n\t\t}\n", i, i)
	}
	corefile.WriteString("\t}\n}\n")
	_, udp, _ := startCoreDNS(t, corefile.String())

	for i := range sets {
		name := fmt.Sprintf("www%d.example.org.", i)
		if ips, _ := addresses(t, "udp", udp, name); !sameAnswer(ips, "127.0.0.2") {
			t.Errorf("first answer for %s: %v, want the secondary 127.0.0.2", name, ips)
		}
	}
}
