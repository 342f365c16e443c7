package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Set by TestMain: the binaries every test runs, or why the tests cannot run.
var (
	corednsBin string
	nginxBin   string
	digBin     string
	skipReason string
)

const modulePath = "github.com/healthfailover/healthfailover"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "healthfailover-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	if err := prepare(dir); err != nil {
		// In CI a missing tool is a broken machine, not a reason to pass.
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: CI=true and the end-to-end tests cannot run: %v\n", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		skipReason = "end-to-end tests skipped: " + err.Error()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireE2E skips a test when TestMain could not set the stage.
func requireE2E(t *testing.T) {
	t.Helper()
	sourcesOnce.Do(statSources)
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

var sourcesOnce sync.Once

// statSources looks at every file the CoreDNS binary is built from, so that
// go test knows these tests depend on them: the build runs in another
// process, which the test cache does not watch, and without this an edit of
// the plugin would leave a stale "ok (cached)". It must run inside m.Run,
// where go test records the files a test looks at.
func statSources() {
	root, err := moduleRoot()
	if err != nil {
		return
	}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "e2e") {
				return filepath.SkipDir
			}
			return nil
		}
		if (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) || name == "go.mod" || name == "go.sum" {
			os.Stat(path)
		}
		return nil
	})
}

// prepare finds nginx and dig and builds CoreDNS into dir.
func prepare(dir string) error {
	var missing []string
	nginxBin = lookPath("nginx", "/usr/sbin/nginx")
	if nginxBin == "" {
		missing = append(missing, "nginx")
	}
	digBin = lookPath("dig", "/usr/bin/dig")
	if digBin == "" {
		missing = append(missing, "dig")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not found; install with: apt-get install nginx-light bind9-dnsutils", strings.Join(missing, " and "))
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	goBin := lookPath("go", filepath.Join(os.Getenv("GOROOT"), "bin", "go"))
	if goBin == "" {
		return errors.New("the go command is not in PATH; it is needed to build ./cmd/coredns")
	}
	// Without -race even under `go test -race`: the race build of a whole
	// CoreDNS is slow to build and to run, and the plugin's races are the
	// unit tests' business; here the binary is only a real server.
	corednsBin = filepath.Join(dir, "coredns")
	cmd := exec.Command(goBin, "build", "-o", corednsBin, "./cmd/coredns")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/coredns in %s: %v\n%s", root, err, out.String())
	}
	return nil
}

// lookPath finds a command in PATH, or at a usual place outside it (nginx
// lives in /usr/sbin, which a non-root PATH often lacks).
// requireTool returns the path of a program a test needs, or skips the
// test without it; in CI a missing tool is a broken machine and fails it.
func requireTool(t *testing.T, name, fallback, pkg string) string {
	t.Helper()
	if p := lookPath(name, fallback); p != "" {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install %s), and CI=true", name, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s)", name, pkg)
	return ""
}

func lookPath(name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if fi, err := os.Stat(fallback); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return fallback
	}
	return ""
}

// moduleRoot walks up from the test's directory to this module's go.mod,
// so the build works whatever directory `go test` was started from.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module "+modulePath)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the test directory", modulePath)
		}
		dir = parent
	}
}
