package healthfailover

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/checker"
)

// getPage asks members' status endpoint for path, as the listener would.
func getPage(t *testing.T, method, path string, members ...*HealthFailover) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	serveStatus(rec, httptest.NewRequest(method, path, nil), members)
	return rec
}

// startStatusHandler builds a handler of one block and starts its checks;
// they stop at the test's end.
func startStatusHandler(t *testing.T, input string) *HealthFailover {
	t.Helper()
	h := statusTestHandler(t, orgBlock, input)
	if err := h.start(handover{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	return h
}

// The page lists every record set with its tiers and members and every
// check, with the headers of a page that must not be cached; /status is
// still the JSON document, as it was.
func TestStatusPageListsEveryRecordAndCheck(t *testing.T) {
	h := statusTestHandler(t, orgBlock, `healthfailover example.org {
		check east http://127.0.0.1:1/health
		check west tcp://127.0.0.1:2
		check both calculated east west
		record www.example.org A {
			primary 127.0.0.1 check east
			secondary 127.0.0.2
		}
		record www.example.org AAAA {
			primary ::1 check west
		}
		record api.example.org A {
			primary 127.0.0.3 check east weight 3
			primary 127.0.0.4 check west weight 1
			tier 3 127.0.0.5 weight 0
		}
		record app.example.org CNAME {
			primary edge.example.net. check both
		}
		record alias.example.org A {
			primary alias www.example.org
		}
	}`)
	rec := getPage(t, http.MethodGet, "/", h)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	page := rec.Body.String()
	for _, want := range []string{
		`data-record="www.example.org. A"`, `data-record="www.example.org. AAAA"`, `data-record="api.example.org. A"`,
		`data-record="app.example.org. CNAME"`, `data-record="alias.example.org. A"`,
		`data-check="east"`, `data-check="west"`, `data-check="both"`,
		`data-value="127.0.0.2"`, `data-value="::1"`, `data-value="edge.example.net."`, `data-value="alias www.example.org."`,
		`<th>tier 3</th>`, `w3`, `<meta http-equiv="refresh" content="5">`, `href="/status"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Nothing is checked yet: every check pending, every member counted healthy.
	if n := strings.Count(page, `data-state="pending"`); n != 3 {
		t.Errorf("%d pending checks, want 3", n)
	}
	// No external asset: nothing to fetch but the page itself.
	if strings.Contains(page, " src=") || strings.Contains(page, "url(") || strings.Contains(page, "@import") ||
		strings.Count(page, "<link") != strings.Count(page, `<link rel="icon" href="data:,">`) {
		t.Error("the page loads an external asset")
	}

	rec = getPage(t, http.MethodGet, "/status", h)
	var want bytes.Buffer
	if err := writeStatus(&want, []*HealthFailover{h}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != want.String() {
		t.Errorf("GET /status: %d %q, body is not the document:\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

// The status endpoint stays read-only, HEAD has no body, and other paths
// are not found.
func TestStatusPageMethods(t *testing.T) {
	h := statusTestHandler(t, orgBlock, `healthfailover example.org {
		record www.example.org A {
			primary 127.0.0.1
		}
	}`)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		rec := getPage(t, method, "/", h)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q", method, rec.Code, rec.Header().Get("Allow"))
		}
	}
	rec := getPage(t, http.MethodHead, "/", h)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD /: %d %q, %d bytes of body", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	if rec := getPage(t, http.MethodGet, "/index.html", h); rec.Code != http.StatusNotFound {
		t.Errorf("GET /index.html: %d", rec.Code)
	}
}

// After a primary's backend fails, the page shows it red, the secondary
// serving and answering, and the check's recent results end in failures.
func TestStatusPageShowsFailover(t *testing.T) {
	primary := newBackend(t, "primary")
	h := startStatusHandler(t, fmt.Sprintf(`healthfailover example.org {
		check east %s/ {
			interval 100ms
			failure_threshold 1
		}
		record www.example.org A {
			primary 127.0.0.1 check east
			secondary 127.0.0.2
		}
	}`, primary.URL))
	eventually(t, 5*time.Second, "east probed", func() bool {
		return len(h.history.recent("east")) >= 2
	})
	page := getPage(t, http.MethodGet, "/", h).Body.String()
	if !strings.Contains(page, `<span class="answer-text">127.0.0.1</span>`) || !strings.Contains(page, `data-value="127.0.0.1" data-state="healthy"`) {
		t.Fatalf("before: the primary does not answer:\n%s", page)
	}

	primary.setUp(false)
	eventually(t, 5*time.Second, "the secondary serving", func() bool {
		return h.table.byName["www.example.org."].a.current.Load().tier == 2
	})
	eventually(t, 5*time.Second, "two failed probes", func() bool {
		r := h.history.recent("east")
		return len(r) >= 2 && !r[len(r)-1].OK && !r[len(r)-2].OK
	})
	page = getPage(t, http.MethodGet, "/", h).Body.String()
	for _, want := range []string{
		`<span class="answer-text">127.0.0.2</span>`, `data-serving-tier="2"`,
		`data-value="127.0.0.1" data-state="unhealthy"`, `data-value="127.0.0.2" data-state="healthy"`,
		`data-check="east" data-state="unhealthy"`, `<i class="mark ok"`, `<i class="mark fail"`, "bad_status", "HTTP 503",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("after: page lacks %s", want)
		}
	}
}

// Messages come from backends: one that puts markup in a header must not
// get it into the page, neither as text nor in an attribute.
func TestStatusPageEscapesHostileText(t *testing.T) {
	const script = `<script>alert(1)</script>`
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", script)
		w.Write([]byte("ok"))
	}))
	t.Cleanup(hostile.Close)
	h := startStatusHandler(t, fmt.Sprintf(`healthfailover example.org {
		check evil %s/ {
			search ok
			interval 100ms
			failure_threshold 1
		}
		record www.example.org A {
			primary 127.0.0.1 check evil
		}
	}`, hostile.URL))
	eventually(t, 5*time.Second, "the hostile backend probed", func() bool {
		st, _ := h.checks.State("evil")
		return st.Checked && strings.Contains(st.Last.Message, script)
	})
	page := getPage(t, http.MethodGet, "/", h).Body.String()
	if strings.Contains(page, "<script") {
		t.Fatalf("the backend's markup is in the page:\n%s", page)
	}
	escaped := `&lt;script&gt;alert(1)&lt;/script&gt;`
	if n := strings.Count(page, escaped); n < 2 {
		t.Errorf("the message appears escaped %d times, want in the last result and in a mark's title:\n%s", n, page)
	}
}

// An override shows on the page as the document says it: a forced check,
// with what its probes say, and a drained member.
func TestStatusPageShowsOverrides(t *testing.T) {
	backend := newBackend(t, "east")
	file := filepath.Join(t.TempDir(), "overrides")
	if err := os.WriteFile(file, []byte("check east down <b>maintenance</b>\ndrain www.example.org A 127.0.0.3 moving traffic off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startStatusHandler(t, fmt.Sprintf(`healthfailover example.org {
		check east %s/
		record www.example.org A {
			primary 127.0.0.1 check east
			primary 127.0.0.3
			secondary 127.0.0.2
		}
		override %s
	}`, backend.URL, file))
	eventually(t, 5*time.Second, "east probed", func() bool {
		st, _ := h.checks.State("east")
		return st.Checked
	})
	page := getPage(t, http.MethodGet, "/", h).Body.String()
	for _, want := range []string{
		`data-check="east" data-state="unhealthy"`,
		`<span class="badge forced">forced down</span>`,
		`<small class="forced-by">by ` + file + `:1; &lt;b&gt;maintenance&lt;/b&gt;; the probes say healthy</small>`,
		`data-value="127.0.0.1" data-state="unhealthy"`, `data-value="127.0.0.3" data-state="drained"`,
		`data-value="127.0.0.2" data-state="healthy"`, `<span class="answer-text">127.0.0.2</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// The ring keeps the last historyLength results, oldest first, and
// recording one allocates nothing.
func TestStatusPageHistoryRing(t *testing.T) {
	ph := newProbeHistory([]checker.Spec{{Name: "a", Kind: checker.HTTP}, {Name: "c", Kind: checker.Calculated}})
	start := time.Unix(0, 0)
	for i := range historyLength + 5 {
		ph.record("a", checker.Result{OK: i%2 == 0, At: start.Add(time.Duration(i) * time.Second)})
	}
	ph.record("c", checker.Result{})
	ph.record("unknown", checker.Result{})
	got := ph.recent("a")
	if len(got) != historyLength || !got[0].At.Equal(start.Add(5*time.Second)) || !got[historyLength-1].At.Equal(start.Add((historyLength+4)*time.Second)) {
		t.Errorf("%d results from %v to %v", len(got), got[0].At, got[len(got)-1].At)
	}
	if ph.recent("c") != nil || ph.recent("unknown") != nil {
		t.Error("results kept for a check that does not probe")
	}
	r := checker.Result{OK: true, Reason: checker.ReasonOK, Message: "status 200", At: time.Now()}
	if n := testing.AllocsPerRun(100, func() { ph.record("a", r) }); n != 0 {
		t.Errorf("record allocates %.0f times", n)
	}
}
