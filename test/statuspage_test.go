package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/healthfailover/healthfailover/internal/fakebackend"
)

// The status page in a real browser: headless Chromium loads it, as a
// user would, and the page refreshes itself. These tests need Debian's
// chromium; without it they skip, except in CI, where a missing browser is
// a broken machine.

// statusPageRefresh is the page's own refresh period (status_page.go).
const statusPageRefresh = 5 * time.Second

// requireChromium returns the path of Chromium, or skips the test.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium), and CI is set")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// browser is one headless Chromium tab, with everything the page wrote to
// its console.
type browser struct {
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newBrowser starts Chromium for the test; it is closed at the test's end.
func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	path := requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		// Root in a container has no sandbox to drop into.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// The page is on loopback; no proxy of the environment applies.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	// Subscribing starts the browser; the messages are collected from then on.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// errors are the console's errors and uncaught exceptions so far.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, m.String())
		}
	}
	return out
}

func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// shownPage is what the page in the browser shows, read from its DOM.
type shownPage struct {
	Generated string            `json:"generated"` // when the server drew it
	Answers   map[string]string `json:"answers"`   // by "NAME TYPE"
	Serving   map[string]string `json:"serving"`   // the serving tier, by "NAME TYPE"
	Members   map[string]string `json:"members"`   // the state, by "NAME TYPE VALUE"
	Checks    map[string]string `json:"checks"`    // the state, by name
	Marks     map[string]int    `json:"marks"`     // recent results, by check
	Text      string            `json:"text"`      // what a reader sees
}

const readPageJS = `(() => {
	const p = {generated: document.body.dataset.generated, answers: {}, serving: {}, members: {}, checks: {}, marks: {},
		text: document.body.innerText};
	for (const r of document.querySelectorAll('[data-record]')) {
		const key = r.dataset.record;
		p.answers[key] = r.querySelector('.answer-text').textContent;
		p.serving[key] = r.dataset.servingTier;
		for (const m of r.querySelectorAll('[data-value]')) p.members[key + ' ' + m.dataset.value] = m.dataset.state;
	}
	for (const c of document.querySelectorAll('[data-check]')) {
		p.checks[c.dataset.check] = c.dataset.state;
		p.marks[c.dataset.check] = c.querySelectorAll('.mark').length;
	}
	return JSON.stringify(p);
})()`

// read reads the page as it is shown now; ok is false while the browser
// is between two loads of it.
func (b *browser) read() (shownPage, bool) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](readPageJS))
	var p shownPage
	if err != nil || json.Unmarshal([]byte(text), &p) != nil || p.Generated == "" {
		return shownPage{}, false
	}
	return p, true
}

// The page loads without a console error and shows the records with the
// answer they get; after a primary's backend stops, the page shows the
// secondary serving on a refresh of its own, without the test reloading it.
func TestStatusPageInBrowser(t *testing.T) {
	b := newBrowser(t, 1280, 900)
	east, west := newBackend(t, "east"), newBackend(t, "west")
	statusAddr := freeAddr(t)
	_, udp, _ := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
	healthfailover {
		check east %s/ {
			interval 100ms
			failure_threshold 1
		}
		check west %s/ {
			interval 100ms
			failure_threshold 1
		}
		record www.example.org A {
			primary 127.0.0.1 check east
			secondary 127.0.0.2 check west
		}
		record api.example.org A {
			primary 127.0.0.3 check west
		}
		status %s
	}
}
`, east.URL(), west.URL(), statusAddr))
	eventually(t, 5*time.Second, "both checks probed", func() bool {
		doc := readStatus(t, statusAddr)
		return len(doc.Checks) == 2 && doc.Checks[0].Checked && doc.Checks[1].Checked
	})

	b.open(t, "http://"+statusAddr+"/")
	first, ok := b.read()
	if !ok {
		t.Fatal("the page cannot be read")
	}
	for key, want := range map[string]string{"www.example.org. A": "127.0.0.1", "api.example.org. A": "127.0.0.3"} {
		if first.Answers[key] != want {
			t.Errorf("%s: the page shows the answer %q, want %q", key, first.Answers[key], want)
		}
	}
	if first.Members["www.example.org. A 127.0.0.1"] != "healthy" || first.Checks["east"] != "healthy" || first.Checks["west"] != "healthy" {
		t.Errorf("before: members %v, checks %v", first.Members, first.Checks)
	}
	if !strings.Contains(first.Text, "www.example.org.") || !strings.Contains(first.Text, "api.example.org.") {
		t.Errorf("the records are not on the page:\n%s", first.Text)
	}

	east.SetUp(false)
	eventually(t, 5*time.Second, "DNS answers the secondary", func() bool {
		ips, _ := addresses(t, "udp", udp, "www.example.org.")
		return sameAnswer(ips, "127.0.0.2")
	})
	var last shownPage
	waited := eventually(t, 3*statusPageRefresh, "the page showing the failover by itself", func() bool {
		p, ok := b.read()
		if ok {
			last = p
		}
		return ok && p.Generated != first.Generated && p.Answers["www.example.org. A"] == "127.0.0.2"
	})
	t.Logf("the page showed the failover %s after DNS did", waited.Round(100*time.Millisecond))
	for key, want := range map[string]string{
		"www.example.org. A 127.0.0.1": "unhealthy",
		"www.example.org. A 127.0.0.2": "healthy",
	} {
		if last.Members[key] != want {
			t.Errorf("after: %s is %q, want %q", key, last.Members[key], want)
		}
	}
	if last.Serving["www.example.org. A"] != "2" || last.Checks["east"] != "unhealthy" || last.Marks["east"] < 2 {
		t.Errorf("after: serving %v, checks %v, marks %v", last.Serving, last.Checks, last.Marks)
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestStatusPageScreenshot draws the picture for the README from a demo:
// a few record sets, one failed over, one check forced down and one member
// drained by an override. It runs when
// STATUS_PAGE_SCREENSHOT names the PNG file to write:
//
//	STATUS_PAGE_SCREENSHOT=$PWD/docs/status-page.png go test -run TestStatusPageScreenshot ./test/
func TestStatusPageScreenshot(t *testing.T) {
	out := os.Getenv("STATUS_PAGE_SCREENSHOT")
	if out == "" {
		t.Skip("STATUS_PAGE_SCREENSHOT is not set")
	}
	b := newBrowser(t, 1280, 900)
	backend := func(ip, body string) *fakebackend.HTTP {
		return fakebackend.NewHTTP(t, fakebackend.Options{IP: ip, Body: body})
	}
	east, west, euAPI, usAPI, backup := backend("127.0.0.11", "east"), backend("127.0.0.12", "west"),
		backend("127.0.0.31", "eu"), backend("127.0.0.32", "us"), backend("127.0.0.21", "backup")
	// The override file is named relative to the test's own directory, so
	// that the page shows it as an operator's would be: "overrides:LINE".
	t.Chdir(t.TempDir())
	overrides := "# CHG-1234\ncheck east down kernel upgrade until 14:00\ndrain www.example.org A 127.0.0.21 rebuilding the backup host\n"
	if err := os.WriteFile("overrides", []byte(overrides), 0o644); err != nil {
		t.Fatal(err)
	}
	statusAddr := freeAddr(t)
	startCoreDNS(t, fmt.Sprintf(`example.org:0 {
	healthfailover {
		check east %s/health {
			interval 1s
			failure_threshold 2
		}
		check west %s/health {
			interval 1s
			failure_threshold 2
		}
		check api-eu %s/healthz {
			interval 1s
			failure_threshold 2
		}
		check api-us %s/healthz {
			interval 1s
			failure_threshold 2
		}
		check backup tcp://%s {
			interval 1s
		}
		check regions calculated east west {
			healthy_threshold 1
		}
		record www.example.org A {
			primary 127.0.0.11 check east
			primary 127.0.0.12 check west
			secondary 127.0.0.21 check backup
		}
		record api.example.org A {
			primary 127.0.0.31 check api-eu
			secondary 127.0.0.32 check api-us
		}
		record shop.example.org CNAME {
			primary shop.eu.cdn.example.net. check regions
			secondary shop.static.example.net.
		}
		record edge.example.org A {
			primary alias www.example.org
			on_all_down servfail
		}
		override overrides
		status %s
	}
}
`, east.URL(), west.URL(), euAPI.URL(), usAPI.URL(), backup.Addr(), statusAddr))
	time.Sleep(12 * time.Second) // a strip of results
	euAPI.SetUp(false)
	west.SetUp(false)
	time.Sleep(4 * time.Second)
	west.SetUp(true)
	time.Sleep(6 * time.Second)

	b.open(t, "http://"+statusAddr+"/")
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// In a cluster, the page shows this member's own probes of the checks it
// observes, says so, and lists the check's observers and views.
func TestStatusPageClusterOfOne(t *testing.T) {
	east := newBackend(t, "east")
	gossip, status := freeAddr(t), freeAddr(t)
	startCoreDNS(t, fmt.Sprintf(`example.org:%d {
		healthfailover {
			check east %s/ {
				interval 100ms
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
	}`, dnsPort(t), east.URL(), status, gossip, freeAddr(t)))
	member := readClusterStatus(t, status).Checks[0].Cluster.Observers[0]
	var page string
	eventually(t, 5*time.Second, "the page showing a few probes", func() bool {
		_, page = httpGet(t, "http://"+status+"/")
		return strings.Count(page, `<i class="mark ok"`) >= 3
	})
	for _, want := range []string{"this member's own probes", "observers: <span class=\"mono\">" + member + "</span>", `data-check="east" data-state="healthy"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s:\n%s", want, page)
		}
	}
}
