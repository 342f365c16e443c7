package nginxproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	c := Config{Prefix: dir, Listen: "127.0.71.100:18100", Connections: 256, AccessLog: true, Page: "US EAST"}
	if err := c.Write(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(data)
	for _, want := range []string{
		"pid " + dir + "/nginx.pid;\n",
		"error_log " + dir + "/error.log;\n",
		"events { worker_connections 256; }\n",
		"access_log " + dir + "/access.log;\n",
		"scgi_temp_path " + dir + "/scgi;\n",
		"listen 127.0.71.100:18100;\n",
		`location / { return 200 "US EAST\n"; }` + "\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("no %q in\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "/health") {
		t.Errorf("a /health location without Health:\n%s", conf)
	}

	c.AccessLog, c.Health = false, true
	conf = c.String()
	if !strings.Contains(conf, "access_log off;\n") || !strings.Contains(conf, `location = /health { return 200 "OK\n"; }`) {
		t.Errorf("no access log and a /health location wanted:\n%s", conf)
	}
	if args := strings.Join(c.Args(), " "); args != "-c "+dir+"/nginx.conf -p "+dir+" -e "+dir+"/error.log -g daemon off;" {
		t.Errorf("args %q", args)
	}
}

func TestRequests(t *testing.T) {
	c := Config{Prefix: t.TempDir()}
	if n, err := c.Requests(""); err != nil || n != 0 {
		t.Errorf("before any request: %d, %v", n, err)
	}
	log := `127.0.71.1 - - [25/Nov/2026:12:00:00 +0000] "GET /health HTTP/1.1" 200 3 "-" "healthfailover"
127.0.71.2 - - [25/Nov/2026:12:00:00 +0000] "GET /health HTTP/1.1" 200 3 "-" "healthfailover"
127.0.71.2 - - [25/Nov/2026:12:00:01 +0000] "GET /healthz HTTP/1.1" 200 3 "-" "healthfailover"
127.0.71.3 - - [25/Nov/2026:12:00:01 +0000] "HEAD /health HTTP/1.1" 200 0 "-" "healthfailover"
`
	if err := os.WriteFile(filepath.Join(c.Prefix, "access.log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"": 4, "/health": 2, "/healthz": 1, "/c1": 0} {
		if n, err := c.Requests(path); err != nil || n != want {
			t.Errorf("requests for %q: %d, %v; want %d", path, n, err, want)
		}
	}
}
