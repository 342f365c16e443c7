package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func overrideCorefile(port int, east, west, status, metrics, file string) string {
	return fmt.Sprintf(`example.org:%d {
		prometheus %s
		healthfailover {
			check east %s/ {
				interval 100ms
				failure_threshold 2
			}
			check west %s/ {
				interval 100ms
				failure_threshold 2
			}
			check both calculated east west
			record www.example.org A {
				primary 127.0.0.1 check east
				primary 127.0.0.2 check west
				secondary 127.0.0.3
			}
			record site.example.org A {
				primary 127.0.0.4 check both
				secondary 127.0.0.5
			}
			status %s
			override %s
		}
	}`, port, metrics, east, west, status, file)
}

// writeAtomically replaces the file as Kubernetes updates a mounted
// ConfigMap: the content goes into a new directory and a symlink swaps.
func writeAtomically(t *testing.T, dir, content string) {
	t.Helper()
	data := filepath.Join(dir, fmt.Sprintf("..%d", time.Now().UnixNano()))
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "overrides"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "overrides")
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(filepath.Join("..data", "overrides"), link); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOverridesFromAFileKubernetesUpdates(t *testing.T) {
	logs := captureLog(t)
	east, west := newBackend(t, "EAST"), newBackend(t, "WEST")
	dir := t.TempDir()
	file := filepath.Join(dir, "overrides")
	status, metrics := freeAddr(t), freeAddr(t)
	// The file does not exist yet: no overrides, one warning.
	_, udp, _ := startCoreDNS(t, overrideCorefile(dnsPort(t), east.URL(), west.URL(), status, metrics, file))
	answers := func(name string, want ...string) func() bool {
		return func() bool { ips, _ := addresses(t, "udp", udp, name); return sameAnswer(ips, want...) }
	}
	if !answers("www.example.org.", "127.0.0.1", "127.0.0.2")() {
		t.Fatal("not answering both primaries before any override")
	}
	if n := strings.Count(logs.String(), "no such file"); n != 1 {
		t.Errorf("%d lines about the missing file, want 1:\n%s", n, logs)
	}

	// Maintenance of east, and west drained from www only: www fails over
	// to the secondary, and site follows east's forced health through the
	// calculated check, as after a real transition.
	writeAtomically(t, dir, "# maintenance CHG-1234\ncheck east down planned maintenance until 14:00\ndrain www.example.org A 127.0.0.2 moving traffic off\ncheck esat down\n")
	eventually(t, 3*time.Second, "www fails over to the secondary", answers("www.example.org.", "127.0.0.3"))
	eventually(t, 3*time.Second, "site follows the calculated check", answers("site.example.org.", "127.0.0.5"))
	for _, want := range []string{
		"check east: forced down by override (planned maintenance until 14:00) at " + file + ":2",
		"drain www.example.org. A 127.0.0.2: drained by override (moving traffic off) at " + file + ":3",
		"override " + file + ":4: unknown check \"esat\"; line ignored",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	var doc struct {
		Checks []struct {
			Name          string `json:"name"`
			Healthy       bool   `json:"healthy"`
			Forced        string `json:"forced"`
			ForcedBy      string `json:"forced_by"`
			ProbedHealthy *bool  `json:"probed_healthy"`
		} `json:"checks"`
		Records []struct {
			Name    string   `json:"name"`
			Drained []string `json:"drained"`
		} `json:"records"`
	}
	_, body := httpGet(t, "http://"+status+"/status")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Checks {
		if c.Name == "east" && (c.Healthy || c.Forced != "down" || c.ForcedBy != file+":2" || c.ProbedHealthy == nil || !*c.ProbedHealthy) {
			t.Errorf("status of the forced check: %+v", c)
		}
	}
	for _, r := range doc.Records {
		if r.Name == "www.example.org." && strings.Join(r.Drained, ",") != "127.0.0.2" {
			t.Errorf("status of the drained set: %+v", r)
		}
	}
	_, exposition := httpGet(t, "http://"+metrics+"/metrics")
	for _, want := range []string{
		`coredns_healthfailover_check_forced{block="dns://example.org.:`,
		`coredns_healthfailover_override_errors{block="dns://example.org.:`,
	} {
		if !strings.Contains(exposition, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	promtoolCheck(t, exposition)

	// A later good version clears the error, and auto hands east back.
	writeAtomically(t, dir, "check east auto\n")
	eventually(t, 3*time.Second, "both primaries answer again", answers("www.example.org.", "127.0.0.1", "127.0.0.2"))
	eventually(t, 3*time.Second, "the log says every line applies", func() bool { return strings.Contains(logs.String(), "every line applies") })
	for _, want := range []string{"check east: override removed, the probes say healthy", "drain www.example.org. A 127.0.0.2: drain removed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}
}

// The file survives a restart because it is a file: a new instance answers
// from its first query with the override in force.
func TestOverrideHoldsFromTheFirstAnswer(t *testing.T) {
	east, west := newBackend(t, "EAST"), newBackend(t, "WEST")
	file := filepath.Join(t.TempDir(), "overrides")
	if err := os.WriteFile(file, []byte("check east down\ncheck west down\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, udp, _ := startCoreDNS(t, overrideCorefile(dnsPort(t), east.URL(), west.URL(), freeAddr(t), freeAddr(t), file))
	if ips, _ := addresses(t, "udp", udp, "www.example.org."); !sameAnswer(ips, "127.0.0.3") {
		t.Errorf("first answer %v, want the secondary: both primaries are forced down", ips)
	}
}
