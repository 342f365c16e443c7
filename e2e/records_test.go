package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// digSections runs dig for a name and type and returns the records of the
// answer and additional sections as dig prints them, one string a record
// with its fields separated by single spaces, each section sorted.
func digSections(server, name, qtype string, tcp bool) (answer, additional []string, err error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return nil, nil, err
	}
	args := []string{"@" + host, "-p", port, "+tries=1", "+time=2", "+nocookie"}
	if tcp {
		args = append(args, "+tcp")
	}
	args = append(args, name, qtype)
	out, err := exec.Command(digBin, args...).CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !strings.Contains(string(out), "status: NOERROR") {
		return nil, nil, fmt.Errorf("dig %s: not NOERROR:\n%s", strings.Join(args, " "), out)
	}
	section := ""
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, ";; ") && strings.HasSuffix(line, "SECTION:"):
			section = strings.Fields(line)[1]
		case line == "":
			section = ""
		case strings.HasPrefix(line, ";"):
		case section == "ANSWER":
			answer = append(answer, strings.Join(strings.Fields(line), " "))
		case section == "ADDITIONAL":
			additional = append(additional, strings.Join(strings.Fields(line), " "))
		}
	}
	slices.Sort(answer)
	slices.Sort(additional)
	return answer, additional, nil
}

// TestSRVWildcardAndDegradedTTL: US EAST and US WEST, each a real nginx on
// the same port, behind an SRV record set (the client finds host and port
// there, and the host's address in the additional section) and a wildcard
// A set. Both follow US EAST's check; while it is down they answer US WEST
// with the degraded TTL of 5 s, then US EAST again with the full 60 s.
func TestSRVWildcardAndDegradedTTL(t *testing.T) {
	requireE2E(t)
	const (
		eastIP = "127.0.0.71"
		westIP = "127.0.0.72"
		srv    = "_http._tcp.example.org"
		wild   = "shop.lb.example.org"
	)
	port := freeSharedPort(t, eastIP, westIP)
	east := startWebServer(t, "US EAST", eastIP, port)
	startWebServer(t, "US WEST", westIP, port)
	pageOf := map[string]string{eastIP: "US EAST", westIP: "US WEST"}

	c := startCoreDNS(t, "", fmt.Sprintf(`
        check east http://%s/health {
            interval 1s
            failure_threshold 2
        }
        record _http._tcp.example.org SRV {
            ttl 60
            degraded_ttl 5
            primary 10 5 %d east.example.org check east
            secondary 20 5 %d west.example.org
        }
        record east.example.org A {
            primary %s
        }
        record west.example.org A {
            primary %s
        }
        record *.lb.example.org A {
            ttl 60
            degraded_ttl 5
            primary %s check east
            secondary %s
        }`, east.addr(), port, port, eastIP, westIP, eastIP, westIP), true)

	// expect asks dig over UDP and TCP for the SRV and the wildcard, wants
	// the region given with its TTL, and fetches the page from where the
	// answers point: the SRV's port at the address of its additional
	// section, the wildcard's address at that port.
	expect := func(region, ip string, ttl int) {
		t.Helper()
		target := map[string]string{"US EAST": "east.example.org.", "US WEST": "west.example.org."}[region]
		prio := map[string]int{"US EAST": 10, "US WEST": 20}[region]
		for _, tcp := range []bool{false, true} {
			answer, extra, err := digSections(c.dnsAddr, srv, "SRV", tcp)
			if err != nil {
				t.Fatal(err)
			}
			wantAnswer := []string{fmt.Sprintf("%s. %d IN SRV %d 5 %d %s", srv, ttl, prio, port, target)}
			wantExtra := []string{fmt.Sprintf("%s 30 IN A %s", target, ip)}
			if !slices.Equal(answer, wantAnswer) || !slices.Equal(extra, wantExtra) {
				t.Errorf("dig (tcp=%t) %s SRV: %q + additional %q, want %q + %q", tcp, srv, answer, extra, wantAnswer, wantExtra)
			}
			answer, _, err = digSections(c.dnsAddr, wild, "A", tcp)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{fmt.Sprintf("%s. %d IN A %s", wild, ttl, ip)}; !slices.Equal(answer, want) {
				t.Errorf("dig (tcp=%t) %s A: %q, want %q", tcp, wild, answer, want)
			}
		}
		expectPages(t, []string{ip}, port, pageOf)
	}
	// waitFor polls the SRV answer (dig +short) until it names target.
	waitFor := func(target string, since time.Time) time.Duration {
		t.Helper()
		deadline := since.Add(10 * time.Second)
		want := fmt.Sprintf("%d %s", port, target)
		for {
			host, p, _ := net.SplitHostPort(c.dnsAddr)
			out, err := exec.Command(digBin, "@"+host, "-p", p, "+short", "+tries=1", "+time=2", srv, "SRV").CombinedOutput()
			if err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), want) {
				return time.Since(since)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s SRV: no %q within 10s; last: %s %v", srv, want, out, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	expect("US EAST", eastIP, 60)
	// The wildcard answers any name below lb.example.org, under that name.
	if answer, _, err := digSections(c.dnsAddr, "api.v2.lb.example.org", "A", false); err != nil ||
		!slices.Equal(answer, []string{"api.v2.lb.example.org. 60 IN A " + eastIP}) {
		t.Errorf("dig api.v2.lb.example.org: %q %v", answer, err)
	}

	stopped := time.Now()
	east.stop(t)
	took := waitFor("west.example.org.", stopped)
	measured(t, "SRV failover to US WEST after stopping US EAST", took, 3*time.Second)
	expect("US WEST", westIP, 5)
	c.waitLog(t, "check east: healthy -> unhealthy", 2*time.Second)

	started := time.Now()
	east.start(t)
	took = waitFor("east.example.org.", started)
	measured(t, "SRV failback to US EAST after starting it again", took, 3*time.Second)
	expect("US EAST", eastIP, 60)
}
