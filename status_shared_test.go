package healthfailover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/healthfailover/healthfailover/internal/testkit"
)

// sharedStatusDoc is the status document as a user's tool decodes it.
type sharedStatusDoc struct {
	Checks []struct {
		Block   string `json:"block"`
		Name    string `json:"name"`
		Healthy bool   `json:"healthy"`
		Checked bool   `json:"checked"`
	} `json:"checks"`
	Records []struct {
		Block  string   `json:"block"`
		Name   string   `json:"name"`
		Type   string   `json:"type"`
		Answer []string `json:"answer"`
	} `json:"records"`
}

// entryKeys lists a document's entries as "block name" (records: "block
// name type"), in document order.
func (d sharedStatusDoc) entryKeys() (checks, records []string) {
	for _, c := range d.Checks {
		checks = append(checks, c.Block+" "+c.Name)
	}
	for _, r := range d.Records {
		records = append(records, r.Block+" "+r.Name+" "+r.Type)
	}
	return checks, records
}

func getSharedStatus(t *testing.T, addr string) (sharedStatusDoc, bool) {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/status")
	if code != http.StatusOK {
		return sharedStatusDoc{}, false
	}
	var doc sharedStatusDoc
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, body)
	}
	if dec.More() {
		t.Fatalf("status: more than one JSON value\n%s", body)
	}
	return doc, true
}

// twoBlocks is a Corefile of two server blocks that name one status
// address, each with a check called web. extra goes into the second block.
func twoBlocks(statusAddr, orgURL, netURL, extra string) string {
	return fmt.Sprintf(`example.org:0 {
	healthfailover {
		check web %s/ {
			interval 100ms
			failure_threshold 1
		}
		record www.example.org A {
			primary 127.0.0.1 check web
			secondary 127.0.0.2
		}
		status %s
	}
}
example.net:0 {
	healthfailover {
		check web %s/ {
			interval 100ms
			failure_threshold 1
		}
		record www.example.net A {
			primary 127.0.0.3 check web
			secondary 127.0.0.4
		}
		%s
		status %s
	}
}
`, orgURL, statusAddr, netURL, extra, statusAddr)
}

const (
	orgBlock = "dns://example.org.:0"
	netBlock = "dns://example.net.:0"
)

// Two blocks with one status address used to fail at start-up with
// "address already in use". Now they share the listener, and its document
// lists both blocks' entries, told apart by block.
func TestStatusSharedByTwoBlocks(t *testing.T) {
	org, nett := newBackend(t, "org"), newBackend(t, "net")
	nett.setUp(false)
	statusAddr := freeAddr(t)
	i, _, _ := startCoreDNS(t, twoBlocks(statusAddr, org.URL, nett.URL, ""))

	var doc sharedStatusDoc
	eventually(t, 5*time.Second, "both blocks' checks probed", func() bool {
		var ok bool
		doc, ok = getSharedStatus(t, statusAddr)
		return ok && len(doc.Checks) == 2 && doc.Checks[0].Checked && doc.Checks[1].Checked
	})
	checks, records := doc.entryKeys()
	if want := []string{netBlock + " web", orgBlock + " web"}; !slices.Equal(checks, want) {
		t.Errorf("checks %q, want %q (sorted by block, then name)", checks, want)
	}
	if want := []string{netBlock + " www.example.net. A", orgBlock + " www.example.org. A"}; !slices.Equal(records, want) {
		t.Errorf("records %q, want %q", records, want)
	}
	if doc.Checks[0].Healthy || !doc.Checks[1].Healthy {
		t.Errorf("net's web should be down and org's up: %+v", doc.Checks)
	}

	// The last block to leave closes the listener.
	inprocess.Stop(i)
	if code, body := httpGet(t, "http://"+statusAddr+"/status"); code != 0 {
		t.Errorf("status endpoint still answers after shutdown: %d %s", code, body)
	}
}

// A reload moves the shared endpoint to the new configuration, listing
// each entry once; a refused reload leaves the old one serving.
func TestStatusSharedAcrossReload(t *testing.T) {
	org, nett := newBackend(t, "org"), newBackend(t, "net")
	statusAddr := freeAddr(t)
	i, _, _ := startCoreDNS(t, twoBlocks(statusAddr, org.URL, nett.URL, ""))
	eventually(t, 5*time.Second, "the status endpoint answers", func() bool {
		_, ok := getSharedStatus(t, statusAddr)
		return ok
	})

	added := "record new.example.net A {\n primary 127.0.0.9\n}"
	i = testkit.Restart(t, i, twoBlocks(statusAddr, org.URL, nett.URL, added))
	wantRecords := []string{netBlock + " new.example.net. A", netBlock + " www.example.net. A", orgBlock + " www.example.org. A"}
	var records []string
	eventually(t, 5*time.Second, "the new configuration's document", func() bool {
		doc, ok := getSharedStatus(t, statusAddr)
		_, records = doc.entryKeys()
		return ok && slices.Equal(records, wantRecords)
	})

	if _, err := i.Restart(inprocess.Input(twoBlocks(statusAddr, org.URL, nett.URL, added+"\nbogus"))); err == nil {
		t.Fatal("a bogus Corefile was accepted")
	}
	eventually(t, 5*time.Second, "the old configuration's document after a refused reload", func() bool {
		doc, ok := getSharedStatus(t, statusAddr)
		checks, records := doc.entryKeys()
		return ok && slices.Equal(records, wantRecords) && len(checks) == 2
	})
}

// The document is written entry by entry; it must still be one valid JSON
// value holding every entry, for readers at once, and HEAD gets no body.
func TestStatusStreamedDocumentIsComplete(t *testing.T) {
	const sets, checks = 1500, 30
	backend := newBackend(t, "ok")
	statusAddr := freeAddr(t)
	var corefile strings.Builder
	for b, zone := range []string{"example.org", "example.net"} {
		fmt.Fprintf(&corefile, "%s:0 {\n\thealthfailover {\n\t\tstatus %s\n", zone, statusAddr)
		for c := range checks {
			fmt.Fprintf(&corefile, "\t\tcheck c%03d %s/\n", c, backend.URL)
		}
		for s := range sets {
			fmt.Fprintf(&corefile, "\t\trecord r%04d.%s A {\n\t\t\tprimary 127.0.%d.%d check c%03d\n\t\t}\n", s, zone, b, s%250+1, s%checks)
		}
		corefile.WriteString("\t}\n}\n")
	}
	startCoreDNS(t, corefile.String())
	eventually(t, 5*time.Second, "the status endpoint answers", func() bool {
		code, _ := httpGet(t, "http://"+statusAddr+"/status")
		return code == http.StatusOK
	})

	// A few readers at once, each checked whole.
	const readers = 4
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- checkCompleteDocument(statusAddr, 2*checks, 2*sets)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Head("http://" + statusAddr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || body.Len() != 0 {
		t.Errorf("HEAD: %d %q, %d bytes of body", resp.StatusCode, resp.Header.Get("Content-Type"), body.Len())
	}
}

// checkCompleteDocument fetches the document once and checks that it is
// one JSON value with every entry, in order, each naming its block.
func checkCompleteDocument(addr string, wantChecks, wantRecords int) error {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var doc sharedStatusDoc
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("status JSON: %w", err)
	}
	if dec.More() {
		return errors.New("status: more than one JSON value")
	}
	checks, records := doc.entryKeys()
	if len(checks) != wantChecks || len(records) != wantRecords {
		return fmt.Errorf("%d checks and %d records, want %d and %d", len(checks), len(records), wantChecks, wantRecords)
	}
	if !slices.IsSorted(checks) || !slices.IsSorted(records) {
		return errors.New("entries not sorted by block, then name")
	}
	for _, r := range doc.Records {
		if r.Block == "" || len(r.Answer) == 0 {
			return fmt.Errorf("record without block or answer: %+v", r)
		}
	}
	return nil
}

// The streamed document is, byte for byte, what encoding the whole
// document at once gave: readers that diff it see only the new field.
func TestStatusStreamMatchesWholeEncoding(t *testing.T) {
	org := statusTestHandler(t, orgBlock, `healthfailover example.org {
		check b tcp://127.0.0.1:1
		check a http://127.0.0.1:1/health
		check both calculated a b
		record www.example.org A {
			primary 127.0.0.1 check a
			secondary 127.0.0.2 check b
		}
		record api.example.org CNAME {
			primary www.example.org
		}
		record www.example.org AAAA {
			primary ::1 check both
		}
	}`)
	nett := statusTestHandler(t, netBlock, `healthfailover example.net {
		record www.example.net A {
			primary 127.0.0.3
		}
	}`)

	for _, tc := range []struct {
		name    string
		members []*HealthFailover
	}{
		{"no members", nil},
		{"records only", []*HealthFailover{nett}},
		{"two blocks", []*HealthFailover{nett, org}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var streamed bytes.Buffer
			if err := writeStatus(&streamed, tc.members); err != nil {
				t.Fatal(err)
			}
			whole := struct {
				Checks  []checkStatus  `json:"checks"`
				Records []recordStatus `json:"records"`
			}{Checks: []checkStatus{}, Records: []recordStatus{}}
			for _, h := range tc.members {
				for _, c := range h.statusOrder().checks {
					st, _ := h.checks.State(c.name)
					whole.Checks = append(whole.Checks, newCheckStatus(h.table.block, st, c.target))
				}
			}
			for _, h := range tc.members {
				for _, s := range h.statusOrder().records {
					whole.Records = append(whole.Records, newRecordStatus(h.table.block, s))
				}
			}
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			enc.Encode(whole)
			if streamed.String() != want.String() {
				t.Errorf("streamed:\n%s\nwhole:\n%s", streamed.String(), want.String())
			}
		})
	}

	// Entries come sorted by name (records: then type), whatever the
	// Corefile's order.
	var names []string
	for _, c := range org.statusOrder().checks {
		names = append(names, c.name)
	}
	for _, s := range org.statusOrder().records {
		names = append(names, s.name+" "+typeName(s))
	}
	if want := []string{"a", "b", "both", "api.example.org. CNAME", "www.example.org. A", "www.example.org. AAAA"}; !slices.Equal(names, want) {
		t.Errorf("order %q, want %q", names, want)
	}
}

// A reader that goes away stops the writing at the first failed write.
func TestStatusStreamStopsWhenTheReaderGoes(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("healthfailover example.org {\n")
	for s := range 200 {
		fmt.Fprintf(&sb, "record r%d.example.org A {\nprimary 127.0.0.1\n}\n", s)
	}
	sb.WriteString("}")
	h := statusTestHandler(t, orgBlock, sb.String())
	w := &failingWriter{okWrites: 3}
	if err := writeStatus(w, []*HealthFailover{h}); err == nil {
		t.Fatal("no error from a writer that failed")
	}
	if w.writes != w.okWrites+1 {
		t.Errorf("%d writes, want %d: writing went on after the reader had gone", w.writes, w.okWrites+1)
	}
}

type failingWriter struct{ writes, okWrites int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.okWrites {
		return 0, errors.New("connection reset by peer")
	}
	return len(p), nil
}

// statusTestHandler builds a handler of one healthfailover block, as the
// server block named block; its checks are never started.
func statusTestHandler(t *testing.T, block, input string) *HealthFailover {
	t.Helper()
	cfg, err := parseString(t, input)
	if err != nil {
		t.Fatal(err)
	}
	cfg.block = block
	h, err := newHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func typeName(s *recordSet) string { return newRecordStatus("", s).Type }
