// Package nginxproc configures the real nginx that the end-to-end tests and
// the benchmarks run as a backend: everything nginx writes (pid, logs, temp
// files) stays in a prefix directory of the server's own, so that no
// root-owned default path is needed and servers side by side do not
// collide. With the access log on, the requests that reached the server
// are counted from it.
package nginxproc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config is one nginx serving one address.
type Config struct {
	Prefix      string // nginx's -p directory: config, pid file, logs, temp dirs
	Listen      string // HOST:PORT
	Connections int    // worker_connections
	AccessLog   bool   // log every request, to Prefix/access.log
	Health      bool   // /health answers "OK"
	Page        string // what every other path answers
}

// String is the nginx.conf.
func (c Config) String() string {
	user := ""
	if os.Geteuid() == 0 {
		// As root nginx would switch its worker to www-data, which may not
		// exist in a container.
		user = "user root;"
	}
	p := c.Prefix
	access := "off"
	if c.AccessLog {
		access = p + "/access.log"
	}
	var locations strings.Builder
	if c.Health {
		locations.WriteString("        location = /health { return 200 \"OK\\n\"; }\n")
	}
	fmt.Fprintf(&locations, "        location / { return 200 \"%s\\n\"; }\n", c.Page)
	return fmt.Sprintf(`%s
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections %d; }
http {
    access_log %s;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    default_type text/plain;
    server {
        listen %s;
%s    }
}
`, user, p, p, c.Connections, access, p, p, p, p, p, c.Listen, locations.String())
}

// Write writes the configuration to Prefix/nginx.conf.
func (c Config) Write() error {
	return os.WriteFile(filepath.Join(c.Prefix, "nginx.conf"), []byte(c.String()), 0o644)
}

// Args are nginx's arguments to run the written configuration in the
// foreground.
func (c Config) Args() []string {
	p := c.Prefix
	return []string{"-c", filepath.Join(p, "nginx.conf"), "-p", p, "-e", filepath.Join(p, "error.log"), "-g", "daemon off;"}
}

// ErrorLog is what nginx has written to its error log so far.
func (c Config) ErrorLog() string {
	data, _ := os.ReadFile(filepath.Join(c.Prefix, "error.log"))
	return string(data)
}

// Requests counts the requests in the access log so far: the GET requests
// for path, or with path "" every request.
func (c Config) Requests(path string) (int, error) {
	data, err := os.ReadFile(filepath.Join(c.Prefix, "access.log"))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if path == "" {
		return bytes.Count(data, []byte("\n")), nil
	}
	return bytes.Count(data, []byte(`"GET `+path+` `)), nil
}
