package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dialIn dials addr from inside the network namespace ns ("" for this
// process's own). A socket belongs to the namespace of the thread that
// creates it, so the dial runs on a thread of its own that enters ns and is
// never handed back to the scheduler: it leaves with its goroutine, and the
// namespace with it. The connection works from any thread afterwards.
func dialIn(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	if ns == "" {
		return net.DialTimeout(network, addr, timeout)
	}
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: see above
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("setns %s: %v", ns, err)}
			return
		}
		conn, err := net.DialTimeout(network, addr, timeout)
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// netnsLab is a few network namespaces of this test, each with an address
// on one bridge that lives in a namespace of its own, so that nothing of
// the host's network (its interfaces, routes, sysctls) is touched. The
// names carry the test process's pid; every namespace is deleted when the
// test ends.
type netnsLab struct {
	ip     string
	prefix string // of every namespace's name
	bridge string // the namespace holding the bridge
}

// newNetnsLab makes the bridge's namespace, or skips the test where
// network namespaces cannot be made (no ip, not root, no CAP_SYS_ADMIN);
// in CI that fails it.
func newNetnsLab(t *testing.T) *netnsLab {
	t.Helper()
	ip := requireTool(t, "ip", "/usr/sbin/ip", "iproute2")
	lab := &netnsLab{ip: ip, prefix: fmt.Sprintf("hfe2e-%d-", os.Getpid())}
	lab.bridge = lab.prefix + "sw"
	if out, err := exec.Command(ip, "netns", "add", lab.bridge).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("ip netns is unavailable (%v: %s)", err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s, and CI=true", msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { lab.remove(t, lab.bridge) })
	lab.run(t, "-n", lab.bridge, "link", "set", "lo", "up")
	lab.run(t, "-n", lab.bridge, "link", "add", "br0", "type", "bridge")
	lab.run(t, "-n", lab.bridge, "link", "set", "br0", "up")
	return lab
}

// add makes the namespace NAME (prefixed) with its loopback up and one
// interface on the bridge holding addrs (CIDR), and returns its full name.
// Processes started in it must be stopped by then: the cleanup deletes the
// namespace, which ends no process.
func (lab *netnsLab) add(t *testing.T, name string, addrs ...string) string {
	t.Helper()
	ns := lab.prefix + name
	lab.run(t, "netns", "add", ns)
	t.Cleanup(func() { lab.remove(t, ns) })
	port := "p-" + name
	lab.run(t, "-n", ns, "link", "set", "lo", "up")
	lab.run(t, "-n", lab.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	lab.run(t, "-n", lab.bridge, "link", "set", port, "master", "br0")
	lab.run(t, "-n", lab.bridge, "link", "set", port, "up")
	for _, a := range addrs {
		lab.run(t, "-n", ns, "addr", "add", a, "dev", "eth0")
	}
	lab.run(t, "-n", ns, "link", "set", "eth0", "up")
	return ns
}

// run runs ip with args and fails the test if it fails.
func (lab *netnsLab) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(lab.ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// command is argv that runs name with args inside ns.
func (lab *netnsLab) command(ns, name string, args ...string) []string {
	return append([]string{lab.ip, "netns", "exec", ns, name}, args...)
}

func (lab *netnsLab) remove(t *testing.T, ns string) {
	if out, err := exec.Command(lab.ip, "netns", "del", ns).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
}
