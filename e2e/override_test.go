package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOverrideMaintenance: an operator takes US EAST out for maintenance
// with the override file while its nginx keeps serving, drains a member,
// and hands everything back, through the built binary, with dig; then a
// restarted CoreDNS answers from its first query with the file in force.
func TestOverrideMaintenance(t *testing.T) {
	requireE2E(t)
	const eastIP, westIP, backupIP = "127.0.0.21", "127.0.0.22", "127.0.0.23"
	port := freeSharedPort(t, eastIP, westIP)
	east := startWebServer(t, "US EAST", eastIP, port)
	west := startWebServer(t, "US WEST", westIP, port)
	file := filepath.Join(t.TempDir(), "overrides")
	write := func(content string) {
		t.Helper()
		// Written whole and renamed into place, as an editor or a
		// ConfigMap update does: never read half-written.
		tmp := file + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	block := fmt.Sprintf(`
        check east http://%s/health {
            interval 500ms
            failure_threshold 2
        }
        check west http://%s/health {
            interval 500ms
            failure_threshold 2
        }
        record www.example.org A {
            primary %s check east
            primary %s check west
            secondary %s
        }
        override %s`, east.addr(), west.addr(), eastIP, westIP, backupIP, file)
	c := startCoreDNS(t, "", block, true)
	expectAddrs(t, c, "www.example.org", eastIP, westIP)
	c.waitLog(t, "no such file", 2*time.Second)

	write("# maintenance CHG-1234\ncheck east down planned maintenance\n")
	waitAddrs(t, c, "www.example.org", time.Now(), 5*time.Second, westIP)
	c.waitLog(t, "check east: forced down by override (planned maintenance) at "+file+":2", 2*time.Second)

	// Draining the last primary fails over to the secondary.
	write("check east down planned maintenance\ndrain www.example.org A " + westIP + "\n")
	waitAddrs(t, c, "www.example.org", time.Now(), 5*time.Second, backupIP)

	// The file survives a restart: the new process answers from its first query with it.
	c.sigterm(t, 10*time.Second)
	c = startCoreDNS(t, "", block, true)
	expectAddrs(t, c, "www.example.org", backupIP)

	write("check east auto\n")
	waitAddrs(t, c, "www.example.org", time.Now(), 5*time.Second, eastIP, westIP)
	c.waitLog(t, "check east: override removed, the probes say healthy", 2*time.Second)
}
