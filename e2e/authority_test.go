package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/syncbuf"
	"github.com/miekg/dns"
)

// The zone behind a real recursive resolver that primes the zone's name
// servers (unbound's stub-prime): its NS query must get the NS set, or it
// answers SERVFAIL for every name. The name server has to be reachable on
// port 53 at the address its glue gives, so CoreDNS listens on a loopback
// address of its own on port 53.
func TestResolverPrimesNameServers(t *testing.T) {
	requireE2E(t)
	unbound := requireTool(t, "unbound", "/usr/sbin/unbound", "unbound")
	nsAddr := fmt.Sprintf("127.53.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	readyPort, deadPort := freeTCPPort(t), freeTCPPort(t)
	corefile := fmt.Sprintf(`example.org:53 {
    bind %s
    ready 127.0.0.1:%d
    healthfailover {
        ns ns1.example.org
        check dead tcp://127.0.0.1:%d {
            interval 200ms
        }
        record www.example.org A {
            primary 127.0.0.10 check dead
            secondary 127.0.0.20
        }
        record ns1.example.org A {
            primary %s
        }
    }
}
`, nsAddr, readyPort, deadPort, nsAddr)
	startCorefile(t, corefile, 53, readyPort, true)
	server := net.JoinHostPort(nsAddr, "53")

	t.Run("transfers and notify are refused", func(t *testing.T) {
		for _, qtype := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
			m := new(dns.Msg)
			m.SetQuestion("example.org.", qtype)
			if qtype == dns.TypeIXFR {
				m.SetIxfr("example.org.", 1, "ns1.example.org.", "hostmaster.example.org.")
			}
			r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, server)
			if err != nil || r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
				t.Errorf("%s: %v, error %v; want REFUSED", dns.TypeToString[qtype], r, err)
			}
		}
		m := new(dns.Msg)
		m.SetNotify("example.org.")
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
		if err != nil || r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("NOTIFY: %v, error %v; want REFUSED", r, err)
		}
	})

	t.Run("unbound with stub-prime", func(t *testing.T) {
		resolver := startUnbound(t, unbound, nsAddr)
		var r *dns.Msg
		deadline := time.Now().Add(15 * time.Second)
		for {
			var err error
			m := new(dns.Msg)
			m.SetQuestion("www.example.org.", dns.TypeA)
			r, _, err = (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, resolver)
			if err == nil && r.Rcode == dns.RcodeSuccess {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("unbound did not answer www.example.org: %v, error %v", r, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "127.0.0.20" {
			t.Errorf("through unbound: %v, want the secondary 127.0.0.20 (the primary is down)", r.Answer)
		}
	})
}

// startUnbound runs unbound in the foreground on a loopback port, with the
// example.org zone stubbed to nsAddr and primed, and returns its address.
func startUnbound(t *testing.T, bin, nsAddr string) string {
	t.Helper()
	dir := t.TempDir()
	port := freeDNSPort(t)
	conf := fmt.Sprintf(`server:
    interface: 127.0.0.1
    port: %d
    do-daemonize: no
    username: ""
    chroot: ""
    directory: %q
    pidfile: %q
    use-syslog: no
    logfile: ""
    verbosity: 1
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
stub-zone:
    name: "example.org"
    stub-addr: %s@53
    stub-prime: yes
`, port, dir, filepath.Join(dir, "unbound.pid"), nsAddr)
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, "-d", "-c", path)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start unbound: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("unbound.conf:\n%s\nunbound output:\n%s", conf, out)
		}
	})
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
