// Command demo runs an active-passive failover on this machine with
// nothing but Go: two web servers, US EAST (the primary, with an HTTP health
// check) and US WEST (the secondary, without one), and CoreDNS with the
// healthfailover plugin inside this very process. It stops US EAST, shows
// www.example.org move to US WEST, starts US EAST again and shows the name
// come back, timing both.
//
//	go run ./cmd/demo
package main

import (
	"errors"
	"fmt"
	"io"
	golog "log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/healthfailover/healthfailover"
	"github.com/healthfailover/healthfailover/internal/corednsproc"
	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/healthfailover/healthfailover/internal/loopback"
	"github.com/miekg/dns"
)

const (
	eastIP = "127.0.0.11"
	westIP = "127.0.0.12"
	name   = "www.example.org."

	// giveUp is far above what interval 1s × failure_threshold 2 needs,
	// so that only a real fault ends the demo with an error.
	giveUp    = 10 * time.Second
	pollEvery = 100 * time.Millisecond
)

// Active-passive: the primary is checked, the secondary is not.
const corefileTemplate = `example.org:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    healthfailover example.org {
        check east http://%s/health {
            interval 1s
            failure_threshold 2
        }
        record www.example.org A {
            primary %s check east
            secondary %s
        }
    }
}
`

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// run tells the whole story on w and returns an error if failover or
// failback did not happen within giveUp.
func run(out io.Writer) error {
	w := &story{w: out}

	east := &region{name: "US EAST", ip: eastIP}
	west := &region{name: "US WEST", ip: westIP}
	if err := startRegions(east, west); err != nil {
		return err
	}
	defer east.Close()
	defer west.Close()

	dnsPort, err := loopback.DNSPort()
	if err != nil {
		return err
	}
	readyPort, err := loopback.TCPPort()
	if err != nil {
		return err
	}
	d := &demo{story: w, dnsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort)), port: east.Port()}
	corefile := fmt.Sprintf(corefileTemplate, dnsPort, readyPort, east.Addr(), eastIP, westIP)

	w.printf("This demo runs a DNS failover on your machine, with nothing but Go:\n")
	w.printf("  US EAST  web server at http://%s/  the primary, with an HTTP health check\n", east.Addr())
	w.printf("  US WEST  web server at http://%s/  the secondary, without one\n", west.Addr())
	w.printf("  CoreDNS  DNS server at %s (UDP and TCP), with the healthfailover plugin, in this process\n\n", d.dnsAddr)
	w.printf("CoreDNS reads this Corefile:\n\n%s\n", indent(corefile, "    "))
	w.printf("The plugin fetches http://%s/health every second. Two failures in a row mark US EAST\n", east.Addr())
	w.printf("unhealthy, and www.example.org then answers with the secondary, US WEST; two successes in\n")
	w.printf("a row mark it healthy again and the name comes back. Lines marked \"CoreDNS:\" are its log.\n\n")

	// Keep CoreDNS's start-up chatter out of the story, but show the
	// plugin's health transitions, which explain what happens.
	prevOut, prevFlags := golog.Writer(), golog.Flags()
	golog.SetOutput(pluginLog{w})
	golog.SetFlags(0)
	defer func() {
		golog.SetOutput(prevOut)
		golog.SetFlags(prevFlags)
	}()
	inst, err := inprocess.Start(corefile)
	if err != nil {
		return fmt.Errorf("starting CoreDNS: %w", err)
	}
	// What CoreDNS does on SIGTERM: the plugins' shutdown (the health
	// checks stop), then the servers.
	defer inprocess.Stop(inst)

	// /ready says 200 once every check has had its first probe; before,
	// the plugin would answer from a view of health it has not seen yet.
	w.printf("Waiting for CoreDNS's first health check (http://127.0.0.1:%d/ready)…\n", readyPort)
	if err := corednsproc.WaitReady(net.JoinHostPort("127.0.0.1", strconv.Itoa(readyPort)), giveUp); err != nil {
		return err
	}
	w.printf("Asking DNS for www.example.org (like: dig @127.0.0.1 -p %d www.example.org A)\n", dnsPort)
	addrs, err := d.lookup()
	if err != nil {
		return err
	}
	w.printf("  %s\n\n", d.describe(addrs))
	if !slices.Equal(addrs, []string{eastIP}) {
		return fmt.Errorf("with both regions up DNS answers %v, want the primary %s", addrs, eastIP)
	}

	w.printf("Stopping US EAST… (its port now refuses connections)\n")
	since := time.Now()
	east.stop()
	took, err := d.watch(since, westIP)
	if err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	w.printf("Failover took %.1fs.\n\n", took.Seconds())

	w.printf("Starting US EAST again…\n")
	since = time.Now()
	if err := east.start(); err != nil {
		return err
	}
	took, err = d.watch(since, eastIP)
	if err != nil {
		return fmt.Errorf("failback: %w", err)
	}
	w.printf("Failback took %.1fs.\n\n", took.Seconds())

	w.printf("A real client also caches an answer for its TTL (30 s, the plugin's default; see `ttl`),\n")
	w.printf("so a browser may follow up to that much later.\n")
	w.printf("Done: stopping CoreDNS and the web servers.\n")
	return nil
}

// demo holds what the polling needs: where DNS is and the web servers' port.
type demo struct {
	*story
	dnsAddr string
	port    int
}

// lookup asks CoreDNS for www.example.org's A records, sorted.
func (d *demo) lookup() ([]string, error) {
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := c.Exchange(m, d.dnsAddr)
	if err != nil {
		return nil, fmt.Errorf("DNS query: %w", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("DNS answers %s", dns.RcodeToString[r.Rcode])
	}
	addrs := []string{}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// describe is what a browser would see: the address DNS gave and the page
// served there.
func (d *demo) describe(addrs []string) string {
	if len(addrs) == 0 {
		return "DNS answers no address"
	}
	var pages []string
	for _, ip := range addrs {
		page, err := fetchPage(net.JoinHostPort(ip, strconv.Itoa(d.port)))
		if err != nil {
			pages = append(pages, "the page does not load ("+err.Error()+")")
		} else {
			pages = append(pages, "the page says "+page)
		}
	}
	return fmt.Sprintf("DNS answers %s → %s", strings.Join(addrs, ", "), strings.Join(pages, "; "))
}

// watch polls DNS every pollEvery, prints every change of the answer with
// the time since since, and returns when DNS answers want alone.
func (d *demo) watch(since time.Time, want string) (time.Duration, error) {
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	last := "\x00" // nothing printed yet
	for {
		addrs, err := d.lookup()
		elapsed := time.Since(since)
		now := fmt.Sprint(addrs)
		if err != nil {
			now = err.Error()
		}
		if now != last {
			last = now
			if err != nil {
				d.printf("  after %.1fs %s\n", elapsed.Seconds(), err)
			} else {
				d.printf("  after %.1fs %s\n", elapsed.Seconds(), d.describe(addrs))
			}
		}
		if err == nil && slices.Equal(addrs, []string{want}) {
			return elapsed, nil
		}
		if elapsed > giveUp {
			return elapsed, fmt.Errorf("DNS still answers %s %s later, want %s", now, giveUp, want)
		}
		<-ticker.C
	}
}

// fetchPage gets a region's page on a fresh connection, ignoring any proxy
// set in the environment: the demo is about where DNS sends a client.
func fetchPage(addr string) (string, error) {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "", errors.New("connection refused")
		}
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(body)), nil
}

// story writes the demo's lines; CoreDNS's log goroutines write to it too.
type story struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *story) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// pluginLog passes on the plugin's log lines (its health transitions) and
// any warning or error, and drops the rest of CoreDNS's log.
type pluginLog struct{ s *story }

func (p pluginLog) Write(b []byte) (int, error) {
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\n")
		if strings.Contains(line, "plugin/healthfailover") || strings.Contains(line, "[ERROR]") || strings.Contains(line, "[WARNING]") {
			p.s.printf("      CoreDNS: %s\n", line)
		}
	}
	return len(b), nil
}

func indent(s, prefix string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString(prefix + line)
	}
	return b.String()
}
