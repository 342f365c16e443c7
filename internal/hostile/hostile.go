// Package hostile is the hostile-backends scenario that the test in test/
// judges and bench/hostile measures: one check against each kind of broken
// or hostile backend beside one healthy check, on the same Corefile, so that
// the figures printed by the bench are those of the scenario the test holds
// to its behaviour.
package hostile

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/healthfailover/healthfailover/internal/fakebackend"
)

// The checks' timings: short, so that a run sees many probes.
const (
	Interval        = 300 * time.Millisecond
	ConnectTimeout  = 200 * time.Millisecond
	ResponseTimeout = 250 * time.Millisecond
	HealthyInterval = 100 * time.Millisecond
)

// Case is one misbehaving backend, its check and what the check must end
// up saying.
type Case struct {
	Name    string
	URL     string
	Options string // extra check options
	Reason  string
	Message string // a part of the last result's message
}

// NeverAccepts is the case of a backend whose connects time out, at addr.
func NeverAccepts(addr string) Case {
	return Case{"never-accepts", "http://" + addr + "/", "", "connect_timeout", "connect timeout after"}
}

// Kind is a hostile backend served by a raw TCP handler.
type Kind struct {
	Name, Scheme    string
	Handle          func(net.Conn, <-chan struct{})
	Options         string
	Reason, Message string
}

// At is the case of this kind served at addr.
func (k Kind) At(addr string) Case {
	return Case{k.Name, k.Scheme + "://" + addr + "/", k.Options, k.Reason, k.Message}
}

// Kinds are the hostile backends besides the one that never accepts.
var Kinds = []Kind{
	{"silent", "http", fakebackend.Silent, "", "response_timeout", "no response within"},
	// A status line that is still arriving when the time is up is a
	// response timeout, not a malformed reply.
	{"trickle", "http", fakebackend.Trickle, "", "response_timeout", "no response within"},
	{"endless-body", "http", fakebackend.EndlessBody, "search NEEDLE", "search_not_found", "search string not found in the first 5120 bytes"},
	{"huge-header", "http", fakebackend.HugeHeaders(), "", "protocol_error", "header larger than"},
	// A stalled handshake is a response timeout: everything after the
	// connection, the handshake included, shares response_timeout;
	// tls_error is for a peer that is not TLS.
	{"tls-stall", "https", fakebackend.Silent, "", "response_timeout", "(TLS handshake)"},
	{"not-tls", "https", fakebackend.PlainToTLS, "", "tls_error", "tls:"},
	{"reset", "http", fakebackend.ResetMidResponse, "", "protocol_error", "protocol:"},
}

// Corefile serves example.org with the healthy check and every case: each
// case's record set answers its secondary 127.0.2.N while its check is down.
func Corefile(cases []Case, healthyURL, statusAddr string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `example.org:0 {
    bind 127.0.0.1
    healthfailover {
        check healthy %s/ {
            interval %s
        }
        record healthy.example.org A {
            primary 127.0.0.1 check healthy
            secondary 127.0.0.2
        }
`, healthyURL, HealthyInterval)
	for i, c := range cases {
		fmt.Fprintf(&b, `        check %s %s {
            interval %s
            connect_timeout %s
            response_timeout %s
            failure_threshold 1
            %s
        }
        record %s.example.org A {
            primary 127.0.1.%d check %s
            secondary 127.0.2.%d
        }
`, c.Name, c.URL, Interval, ConnectTimeout, ResponseTimeout, c.Options, c.Name, i+1, c.Name, i+1)
	}
	fmt.Fprintf(&b, "        status %s\n    }\n}\n", statusAddr)
	return b.String()
}
