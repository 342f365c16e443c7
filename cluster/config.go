// Package cluster lets replicas share health: members find each other and
// gossip with hashicorp/memberlist, every check is probed by a few of them
// (its observers), and every member derives the same health of the check
// from its observers' views. It knows nothing of DNS or of how a check
// probes: it carries views and counts them.
package cluster

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults of the cluster block.
const (
	DefaultPort      = 7946
	DefaultBind      = "0.0.0.0:7946"
	DefaultObservers = 3
	// DefaultQuorum is Route 53's: a check is healthy while more than 18 %
	// of its checkers report it healthy.
	DefaultQuorum = 18
)

// Config is one gossip node: where it listens, what it tells its peers to
// dial, whom it joins and the key that encrypts its gossip.
type Config struct {
	Bind      string // HOST:PORT
	Advertise string // HOST:PORT, empty: the bind address, or a private address of the host for 0.0.0.0
	Join      []string
	// Resolver is the DNS server (HOST:PORT) that resolves names in Join;
	// empty: the system's resolver. Cluster DNS pods resolve through the
	// node's resolver, which does not know the cluster's Services.
	Resolver string
	Key      []byte // nil: gossip in the clear
	Logger   Logger

	// JoinRetry is how often a member re-resolves and joins the peers it
	// is not connected to; zero means DefaultJoinRetry.
	JoinRetry time.Duration
}

// DefaultJoinRetry re-resolves `join` often enough that a replica started
// before its peers were resolvable finds them within seconds.
const DefaultJoinRetry = 10 * time.Second

// Logger is where the node's lines go (CoreDNS's plugin logger in the plugin).
type Logger interface {
	Infof(format string, v ...any)
	Warningf(format string, v ...any)
	Errorf(format string, v ...any)
}

// ParseHostPort splits HOST:PORT, where the port may be left out (def).
func ParseHostPort(s string, def int) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return strings.Trim(s, "[]"), def, nil
		}
		return "", 0, fmt.Errorf("%q is not HOST:PORT", s)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, p)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", s)
	}
	return host, port, nil
}

// LoadKey reads a gossip key: a file holding 16, 24 or 32 bytes (AES-128,
// -192 or -256), base64-encoded, surrounding white space ignored.
func LoadKey(path string) ([]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key_file: %v", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("key_file %s: not base64: %v", path, err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("key_file %s: the key is %d bytes, want 16, 24 or 32 (e.g. head -c 32 /dev/urandom | base64)", path, len(key))
}
