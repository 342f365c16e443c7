package healthfailover

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

func parseString(t *testing.T, input string) (*config, error) {
	t.Helper()
	c := caddy.NewTestController("dns", input)
	c.ServerBlockKeys = []string{"example.org."}
	return parse(c)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, input, err string
	}{
		{"unknown property", `healthfailover example.org {
			bogus 1
		}`, "Testfile:2 - Error during parsing: unknown property \"bogus\""},
		{"unknown check option", `healthfailover {
			check a http://127.0.0.1/ {
				colour blue
			}
		}`, "Testfile:3 - Error during parsing: unknown property \"colour\" for check \"a\""},
		{"unknown record option", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1
				colour blue
			}
		}`, "Testfile:4 - Error during parsing: unknown property \"colour\" for record www.example.org"},
		{"bad scheme", `healthfailover {
			check a ftp://127.0.0.1/
		}`, "Testfile:2 - Error during parsing: check \"a\": bad URL \"ftp://127.0.0.1/\": scheme \"ftp\" is not http, https, tcp, grpc or grpcs"},
		{"URL without host", `healthfailover {
			check a 127.0.0.1:80
		}`, "Testfile:2 - Error during parsing: check \"a\": bad URL \"127.0.0.1:80\": first path segment in URL cannot contain colon"},
		{"URL without a host name", `healthfailover {
			check a tcp://:80
		}`, "Testfile:2 - Error during parsing: check \"a\": bad URL \"tcp://:80\": want http://HOST[:PORT][/PATH], https://…, tcp://HOST:PORT or grpc[s]://HOST:PORT[/SERVICE]"},
		{"URL with a bad host", `healthfailover {
			check a http://a..b/
		}`, "Testfile:2 - Error during parsing: check \"a\": address \"a..b:80\" is not HOST:PORT"},
		{"bad port", `healthfailover {
			check a http://127.0.0.1:99999/
		}`, "Testfile:2 - Error during parsing: check \"a\": port \"99999\" of address \"127.0.0.1:99999\" is not in 1-65535"},
		{"tcp without port", `healthfailover {
			check a tcp://127.0.0.1
		}`, "Testfile:2 - Error during parsing: check \"a\": bad URL \"tcp://127.0.0.1\": a tcp check needs a port"},
		{"search on tcp", `healthfailover {
			check a tcp://127.0.0.1:80 {
				search ok
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": search is for http and https checks, not tcp"},
		{"unknown check", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1 check nope
			}
		}`, "Testfile:3 - Error during parsing: record www.example.org.: unknown check \"nope\""},
		{"unknown child", `healthfailover {
			check all calculated a b
			check a tcp://127.0.0.1:80
		}`, "Testfile:2 - Error during parsing: check \"all\": unknown child check \"b\""},
		{"calculated cycle", `healthfailover {
			check x calculated y
			check y calculated x
		}`, "Testfile:2 - Error during parsing: check \"x\": in a cycle of calculated checks: x -> y -> x"},
		{"unknown alias", `healthfailover {
			record www.example.org A {
				primary alias web.example.org
			}
		}`, "Testfile:3 - Error during parsing: record www.example.org.: unknown alias web.example.org. (no record web.example.org. A in this block)"},
		{"alias cycle", `healthfailover {
			record a.example.org A {
				primary alias b.example.org
			}
			record b.example.org A {
				primary alias a.example.org
			}
		}`, "Testfile:2 - Error during parsing: alias cycle: a.example.org. -> b.example.org. -> a.example.org."},
		{"alias of another type", `healthfailover {
			record a.example.org A {
				primary alias b.example.org
			}
			record b.example.org AAAA {
				primary ::1
			}
		}`, "Testfile:3 - Error during parsing: record a.example.org. A: alias b.example.org. is a record set of another type"},
		{"record outside zones", `healthfailover example.org {
			record www.example.net A {
				primary 127.0.0.1
			}
		}`, "Testfile:2 - Error during parsing: record www.example.net. is outside the zones of this block (example.org.)"},
		{"record defined twice", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1
			}
			record WWW.example.org. A {
				primary 127.0.0.2
			}
		}`, "Testfile:5 - Error during parsing: record www.example.org. A is defined twice (first at line 2)"},
		{"CNAME beside A", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1
			}
			record www.example.org CNAME {
				primary web.example.org
			}
		}`, "Testfile:5 - Error during parsing: record www.example.org.: a CNAME cannot share its name with another record (line 2)"},
		{"check defined twice", `healthfailover {
			check a tcp://127.0.0.1:80
			check a tcp://127.0.0.1:81
		}`, "Testfile:3 - Error during parsing: check \"a\" is defined twice (first at line 2)"},
		{"A value not IPv4", `healthfailover {
			record www.example.org A {
				primary ::1
			}
		}`, "Testfile:3 - Error during parsing: primary ::1: not an IPv4 address"},
		{"AAAA value not IPv6", `healthfailover {
			record www.example.org AAAA {
				secondary 127.0.0.1
			}
		}`, "Testfile:3 - Error during parsing: secondary 127.0.0.1: not an IPv6 address"},
		{"CNAME value an address", `healthfailover {
			record www.example.org CNAME {
				primary 127.0.0.1
			}
		}`, "Testfile:3 - Error during parsing: primary 127.0.0.1: a CNAME points to a name, not an address"},
		{"threshold too high", `healthfailover {
			check a tcp://127.0.0.1:80 {
				failure_threshold 11
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": failure_threshold 11 is not in 1-10"},
		{"threshold zero", `healthfailover {
			check a tcp://127.0.0.1:80 {
				success_threshold 0
			}
		}`, "Testfile:3 - Error during parsing: success_threshold \"0\": must be a positive whole number"},
		{"healthy_threshold above children", `healthfailover {
			check a tcp://127.0.0.1:80
			check all calculated a {
				healthy_threshold 2
			}
		}`, "Testfile:4 - Error during parsing: check \"all\": healthy_threshold 2 is not in 1-1 (the number of children)"},
		{"negative duration", `healthfailover {
			check a tcp://127.0.0.1:80 {
				interval -5s
			}
		}`, "Testfile:3 - Error during parsing: interval \"-5s\": must be positive"},
		{"not a duration", `healthfailover {
			check a tcp://127.0.0.1:80 {
				connect_timeout soon
			}
		}`, "Testfile:3 - Error during parsing: connect_timeout \"soon\": not a duration (like 10s or 500ms)"},
		{"timeout longer than interval", `healthfailover {
			check a http://127.0.0.1/ {
				interval 1s
				response_timeout 2s
			}
		}`, "Testfile:4 - Error during parsing: check \"a\": response_timeout 2s is longer than the interval 1s"},
		{"interval too short", `healthfailover {
			check a http://127.0.0.1/ {
				interval 10ms
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": interval 10ms is shorter than the minimum 100ms"},
		{"weights on some members only", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1 weight 10
				primary 127.0.0.2
			}
		}`, "Testfile:2 - Error during parsing: record www.example.org.: give every member a weight, or none"},
		{"record without members", `healthfailover {
			record www.example.org A {
				ttl 5
			}
		}`, "Testfile:2 - Error during parsing: record www.example.org A has no member: add a primary"},
		{"bad on_all_down", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1
				on_all_down panic
			}
		}`, "Testfile:4 - Error during parsing: on_all_down \"panic\": want primary, nodata or servfail"},
		{"bad record type", `healthfailover {
			record www.example.org PTR {
				primary mail.example.org
			}
		}`, "Testfile:2 - Error during parsing: record www.example.org: type \"PTR\" is not A, AAAA, CNAME, SRV, TXT or MX"},
		{"SRV value without its port", `healthfailover {
			record _http._tcp.example.org SRV {
				primary 10 5 www.example.org check a
			}
		}`, "Testfile:3 - Error during parsing: primary 10 5 www.example.org check: want PRIORITY WEIGHT PORT TARGET, like 10 5 443 www.example.org (port \"www.example.org\" is not a number in 0-65535)"},
		{"SRV value cut short", `healthfailover {
			record _http._tcp.example.org SRV {
				secondary 10 5 443
			}
		}`, "Testfile:3 - Error during parsing: secondary 10 5 443: want PRIORITY WEIGHT PORT TARGET, like 10 5 443 www.example.org"},
		{"SRV priority out of range", `healthfailover {
			record _http._tcp.example.org SRV {
				primary 65536 5 443 www.example.org
			}
		}`, "Testfile:3 - Error during parsing: primary 65536 5 443 www.example.org: want PRIORITY WEIGHT PORT TARGET, like 10 5 443 www.example.org (priority \"65536\" is not a number in 0-65535)"},
		{"SRV target an address", `healthfailover {
			record _http._tcp.example.org SRV {
				primary 10 5 443 192.0.2.1
			}
		}`, "Testfile:3 - Error during parsing: primary 10 5 443 192.0.2.1: want PRIORITY WEIGHT PORT TARGET, like 10 5 443 www.example.org (target 192.0.2.1 is an address, not a name)"},
		{"MX without preference", `healthfailover {
			record example.org MX {
				primary mail.example.org
			}
		}`, "Testfile:3 - Error during parsing: primary mail.example.org: want PREFERENCE HOST, like 10 mail.example.org"},
		{"MX without preference, with a check", `healthfailover {
			record example.org MX {
				primary mail.example.org check a
			}
		}`, "Testfile:3 - Error during parsing: primary mail.example.org check: want PREFERENCE HOST, like 10 mail.example.org (preference \"mail.example.org\" is not a number in 0-65535)"},
		{"TXT not one string", `healthfailover {
			record example.org TXT {
				primary v=spf1 -all check a
			}
		}`, "Testfile:3 - Error during parsing: primary v=spf1 -all: a TXT value is one quoted string"},
		{"TXT string too long", `healthfailover {
			record example.org TXT {
				primary "` + strings.Repeat("x", 256) + `"
			}
		}`, "Testfile:3 - Error during parsing: primary " + strings.Repeat("x", 256) + ": a TXT string is at most 255 bytes, this one has 256"},
		{"wildcard not the leftmost label", `healthfailover {
			record a.*.example.org A {
				primary 192.0.2.1
			}
		}`, "Testfile:2 - Error during parsing: record a.*.example.org: a wildcard is * as the whole leftmost label, like *.example.org"},
		{"wildcard in part of a label", `healthfailover {
			record w*.example.org A {
				primary 192.0.2.1
			}
		}`, "Testfile:2 - Error during parsing: record w*.example.org: a wildcard is * as the whole leftmost label, like *.example.org"},
		{"wildcard outside the zones", `healthfailover example.org {
			record *.example.net A {
				primary 192.0.2.1
			}
		}`, "Testfile:2 - Error during parsing: record *.example.net. is outside the zones of this block (example.org.)"},
		{"wildcard CNAME to a name it answers", `healthfailover {
			record *.example.org CNAME {
				primary www.example.org
			}
		}`, "Testfile:3 - Error during parsing: record *.example.org.: a wildcard CNAME cannot point to a name it answers itself (www.example.org.)"},
		{"degraded_ttl above ttl", `healthfailover {
			record www.example.org A {
				degraded_ttl 60
				ttl 10
				primary 192.0.2.1
			}
		}`, "Testfile:3 - Error during parsing: record www.example.org: degraded_ttl 60 is longer than the ttl 10"},
		{"degraded_ttl above the default ttl", `healthfailover {
			record www.example.org A {
				primary 192.0.2.1
				degraded_ttl 31
			}
		}`, "Testfile:4 - Error during parsing: record www.example.org: degraded_ttl 31 is longer than the ttl 30"},
		{"degraded_ttl not a number", `healthfailover {
			record www.example.org A {
				primary 192.0.2.1
				degraded_ttl soon
			}
		}`, "Testfile:4 - Error during parsing: degraded_ttl \"soon\": want a number in 0-2147483647"},
		{"SRV alias of an A set", `healthfailover {
			record _http._tcp.example.org SRV {
				primary alias www.example.org
			}
			record www.example.org A {
				primary 192.0.2.1
			}
		}`, "Testfile:3 - Error during parsing: record _http._tcp.example.org. SRV: alias www.example.org. is a record set of another type"},
		{"tls_verify on http", `healthfailover {
			check a http://127.0.0.1/ {
				tls_verify
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": tls_verify is for https and grpcs checks, not http"},
		// gRPC checks, HTTP options and fast_interval.
		{"grpc without a port", `healthfailover {
			check a grpc://127.0.0.1
		}`, "Testfile:2 - Error during parsing: check \"a\": bad URL \"grpc://127.0.0.1\": a grpc check needs a port"},
		{"grpc with a bad service path", `healthfailover {
			check a grpcs://127.0.0.1:8443/shop/Cart
		}`, "Testfile:2 - Error during parsing: check \"a\": service \"shop/Cart\" is not a gRPC service name (like pkg.Service)"},
		{"grpc with a query", `healthfailover {
			check a grpc://127.0.0.1:50051/shop.Cart?deep=1
		}`, "Testfile:2 - Error during parsing: check \"a\": service \"shop.Cart?deep=1\" is not a gRPC service name (like pkg.Service)"},
		{"search on grpc", `healthfailover {
			check a grpc://127.0.0.1:50051 {
				search ok
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": search is for http and https checks, not grpc"},
		{"tls_verify on grpc", `healthfailover {
			check a grpc://127.0.0.1:50051 {
				tls_verify
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": tls_verify is for https and grpcs checks, not grpc"},
		{"header Host", `healthfailover {
			check a http://127.0.0.1/ {
				header X-Token abc
				header Host www.example.org
				header X-Other def
			}
		}`, "Testfile:4 - Error during parsing: check \"a\": header Host: set it with host, which also sets the TLS server name"},
		{"header without a value", `healthfailover {
			check a http://127.0.0.1/ {
				header X-Token
			}
		}`, "Testfile:3 - Error during parsing: header needs a NAME and a VALUE (quote a value with spaces)"},
		{"header on tcp", `healthfailover {
			check a tcp://127.0.0.1:80 {
				header X-Token abc
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": header is for http and https checks, not tcp"},
		{"method POST", `healthfailover {
			check a http://127.0.0.1/ {
				method POST
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": method \"POST\" is not GET or HEAD"},
		{"method HEAD with search", `healthfailover {
			check a http://127.0.0.1/ {
				search ok
				method HEAD
			}
		}`, "Testfile:4 - Error during parsing: check \"a\": search needs a body, which a HEAD request does not get"},
		{"expect 99", `healthfailover {
			check a http://127.0.0.1/ {
				expect 200 99
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": expect 99 is not within the statuses 100-599"},
		{"expect 600", `healthfailover {
			check a http://127.0.0.1/ {
				expect 500-600
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": expect 500-600 is not within the statuses 100-599"},
		{"expect backwards", `healthfailover {
			check a http://127.0.0.1/ {
				expect 302-300
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": expect 302-300 is backwards: write 300-302"},
		{"expect not a status", `healthfailover {
			check a http://127.0.0.1/ {
				expect 2xx
			}
		}`, "Testfile:3 - Error during parsing: expect \"2xx\": want a status like 200 or a range like 200-299"},
		{"expect twice", `healthfailover {
			check a http://127.0.0.1/ {
				expect 200
				expect 204
			}
		}`, "Testfile:4 - Error during parsing: expect is given twice: list every status on one line"},
		{"fast_interval longer than the interval", `healthfailover {
			check a http://127.0.0.1/ {
				interval 5s
				fast_interval 10s
			}
		}`, "Testfile:4 - Error during parsing: check \"a\": fast_interval 10s is longer than the interval 5s"},
		{"fast_interval longer than the default interval", `healthfailover {
			check a grpc://127.0.0.1:50051 {
				fast_interval 20s
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": fast_interval 20s is longer than the interval 10s"},
		{"fast_interval too short", `healthfailover {
			check a tcp://127.0.0.1:80 {
				fast_interval 50ms
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": fast_interval 50ms is shorter than the minimum 100ms"},
		// The checker judges a check and names the option at fault; the
		// parser points at that option's line, or at the check's.
		{"response_timeout on tcp", `healthfailover {
			check a tcp://127.0.0.1:80 {
				interval 5s
				response_timeout 1s
			}
		}`, "Testfile:4 - Error during parsing: check \"a\": response_timeout is for http, https, grpc and grpcs checks, not tcp"},
		{"connect_timeout longer than the default interval", `healthfailover {
			check a tcp://127.0.0.1:80 {
				connect_timeout 11s
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": connect_timeout 11s is longer than the interval 10s"},
		{"healthy_threshold on http", `healthfailover {
			check a http://127.0.0.1/ {
				healthy_threshold 1
			}
		}`, "Testfile:3 - Error during parsing: check \"a\": healthy_threshold is for calculated checks"},
		{"child listed twice", `healthfailover {
			check a tcp://127.0.0.1:80
			check all calculated a a
		}`, "Testfile:3 - Error during parsing: check \"all\": child check \"a\" is listed twice"},
		{"tcp with a path", `healthfailover {
			check a tcp://127.0.0.1:80/health
		}`, "Testfile:2 - Error during parsing: check \"a\": a tcp check has no path"},
		{"two blocks", "healthfailover\nhealthfailover", "Testfile:2 - Error during parsing: healthfailover is used twice in this server block: merge the two blocks"},
		{"weight out of range", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1 weight 256
			}
		}`, "Testfile:3 - Error during parsing: weight \"256\": want a number in 0-255"},
		{"CNAME loop", `healthfailover {
			record a.example.org CNAME {
				primary b.example.org
			}
			record b.example.org CNAME {
				primary c.example.com
				secondary a.example.org
			}
		}`, "Testfile:2 - Error during parsing: CNAME loop: a.example.org. -> b.example.org. -> a.example.org."},
		{"member twice in one tier", `healthfailover {
			record www.example.org A {
				primary 127.0.0.1 check a
				secondary 127.0.0.2
				primary 127.0.0.1
			}
			check a tcp://127.0.0.1:80
		}`, "Testfile:5 - Error during parsing: record www.example.org.: primary 127.0.0.1 is given twice (first at line 3)"},
		{"alias twice in one tier", `healthfailover {
			record pool.example.org A {
				primary 127.0.0.1
			}
			record www.example.org A {
				tier 3 alias pool.example.org
				tier 3 alias POOL.example.org. weight 1
			}
		}`, "Testfile:7 - Error during parsing: record www.example.org.: tier 3 alias pool.example.org. is given twice (first at line 6)"},
		{"ns without a name", `healthfailover {
			ns
		}`, "Testfile:2 - Error during parsing: ns needs at least one name server name"},
		{"ns with an address", `healthfailover {
			ns 192.0.2.53
		}`, "Testfile:2 - Error during parsing: ns 192.0.2.53: an NS record names a host, not an address"},
		{"ns twice", `healthfailover {
			ns ns1.example.org ns2.example.org NS1.example.org.
		}`, "Testfile:2 - Error during parsing: ns ns1.example.org. is listed twice"},
		{"ns given twice", `healthfailover {
			ns ns1.example.org
			ns ns2.example.org
		}`, "Testfile:3 - Error during parsing: ns is given twice: list every name server on one line"},
		{"CNAME to itself", `healthfailover {
			record www.example.org CNAME {
				primary www.example.org
			}
		}`, "Testfile:3 - Error during parsing: record www.example.org.: a CNAME cannot point to itself"},
		{"one-line block, option without its value", `healthfailover {
			check a https://127.0.0.1/ { interval }
		}`, "Testfile:2 - Error during parsing: Wrong argument count or unexpected line ending after '}'"},
		{"one-line block, an option after the closing brace", `healthfailover {
			check a https://127.0.0.1/ { host a } interval 1s
		}`, "Testfile:2 - Error during parsing: Wrong argument count or unexpected line ending after '1s'"},
		{"one-line record block, unknown option", `healthfailover {
			record www.example.org A { primary 127.0.0.1 }
			record api.example.org A { colour blue }
		}`, "Testfile:3 - Error during parsing: unknown property \"colour\" for record api.example.org"},
		{"override without a file", `healthfailover {
			override
		}`, "Testfile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'override'"},
		{"override twice", `healthfailover {
			override a.txt
			override b.txt
		}`, "Testfile:3 - Error during parsing: override is given twice: one file holds every override"},
		{"a target name that needs escapes", `healthfailover {
			record a.example.org CNAME { primary b"c.example.org }
		}`, "Testfile:2 - Error during parsing: primary b\"c.example.org: not a domain name"},
		{"cluster without a block", `healthfailover {
			cluster
		}`, "Testfile:2 - Error during parsing: cluster takes a block: cluster { join PEER... }"},
		{"cluster given twice", `healthfailover {
			cluster {
			}
			cluster {
			}
		}`, "Testfile:4 - Error during parsing: cluster is given twice"},
		{"cluster unknown option", `healthfailover {
			cluster {
				gossip fast
			}
		}`, "Testfile:3 - Error during parsing: cluster: unknown option \"gossip\""},
		{"cluster option twice", `healthfailover {
			cluster {
				observers 2
				observers 3
			}
		}`, "Testfile:4 - Error during parsing: cluster: observers is given twice"},
		{"cluster bind is a name", `healthfailover {
			cluster {
				bind coredns.local:7946
			}
		}`, "Testfile:3 - Error during parsing: cluster: bind \"coredns.local:7946\": want an IP address with a port, like 10.0.0.5:7946"},
		{"cluster advertise bad port", `healthfailover {
			cluster {
				advertise 10.0.0.5:99999
			}
		}`, "Testfile:3 - Error during parsing: cluster: advertise: \"10.0.0.5:99999\": port \"99999\" is not a number from 1 to 65535"},
		{"cluster join nothing", `healthfailover {
			cluster {
				join
			}
		}`, "Testfile:3 - Error during parsing: cluster: join needs at least one peer: an address or a DNS name, with an optional :PORT"},
		{"cluster observers zero", `healthfailover {
			cluster {
				observers 0
			}
		}`, "Testfile:3 - Error during parsing: observers \"0\": want a number in 1-100"},
		{"cluster quorum 100 could never be healthy", `healthfailover {
			cluster {
				quorum 100
			}
		}`, "Testfile:3 - Error during parsing: quorum \"100\": want a number in 0-99"},
		{"cluster key file missing", `healthfailover {
			cluster {
				key_file testdata/no-such-key
			}
		}`, "Testfile:3 - Error during parsing: cluster: key_file: open testdata/no-such-key: no such file or directory"},
		{"cluster key of the wrong size", `healthfailover {
			cluster {
				key_file testdata/gossip-key-short
			}
		}`, "Testfile:3 - Error during parsing: cluster: key_file testdata/gossip-key-short: the key is 10 bytes, want 16, 24 or 32 (e.g. head -c 32 /dev/urandom | base64)"},
		{"cluster key not base64", `healthfailover {
			cluster {
				key_file testdata/gossip-key-text
			}
		}`, "Testfile:3 - Error during parsing: cluster: key_file testdata/gossip-key-text: not base64: illegal base64 data at input byte 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(t, tc.input)
			if err == nil {
				t.Fatalf("no error, want %q", tc.err)
			}
			if err.Error() != tc.err {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tc.err)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		checks []checker.Spec
		sets   []*setSpec
		zones  []string
		fall   []string
		status string
	}{
		{
			name: "the seed: an http check on the primary, none on the secondary",
			input: `healthfailover example.org {
				check east http://127.0.0.1:8080/health {
					interval 1s
					failure_threshold 2
				}
				record www.example.org A {
					primary 127.0.0.1 check east
					secondary 127.0.0.2
				}
			}`,
			zones: []string{"example.org."},
			checks: []checker.Spec{{Name: "east", Kind: checker.HTTP, Address: "127.0.0.1:8080", Path: "/health",
				Interval: time.Second, FailureThreshold: 2}},
			sets: []*setSpec{{name: "www.example.org.", qtype: dns.TypeA, ttl: 30, pos: position{"Testfile", 6}, members: []memberSpec{
				{tier: 1, value: "127.0.0.1", check: "east", weight: -1, pos: position{"Testfile", 7}},
				{tier: 2, value: "127.0.0.2", weight: -1, pos: position{"Testfile", 8}},
			}}},
		},
		{
			name: "option blocks left out, zones from the server block, IPv6, https, tcp, host names",
			input: `healthfailover {
				check v6 https://[::1]:8443/?x=1
				check tcp tcp://localhost:22
				check both calculated v6 tcp
				record v6.example.org AAAA {
					primary ::1 check v6
				}
			}`,
			zones: []string{"example.org."},
			checks: []checker.Spec{
				{Name: "v6", Kind: checker.HTTPS, Address: "[::1]:8443", Path: "/?x=1"},
				{Name: "tcp", Kind: checker.TCP, Address: "localhost:22"},
				{Name: "both", Kind: checker.Calculated, Children: []string{"v6", "tcp"}},
			},
			sets: []*setSpec{{name: "v6.example.org.", qtype: dns.TypeAAAA, ttl: 30, pos: position{"Testfile", 5}, members: []memberSpec{
				{tier: 1, value: "::1", check: "v6", weight: -1, pos: position{"Testfile", 6}},
			}}},
		},
		{
			name: "every option",
			input: `healthfailover example.org example.net {
				check a https://127.0.0.1/ {
					host www.example.org
					search "all good"
					interval 30s
					connect_timeout 3s
					response_timeout 1500ms
					failure_threshold 5
					success_threshold 2
					tls_verify
					invert
					disable
				}
				check b tcp://127.0.0.1:25
				check c calculated a b {
					healthy_threshold 1
				}
				record api.example.net CNAME {
					ttl 5
					primary alias web.example.net check c weight 3
					secondary backup.example.com weight 0
					tier 3 last.example.com weight 1
					on_all_down servfail
				}
				record web.example.net CNAME {
					primary lb.example.com
				}
				fallthrough example.net
				status 127.0.0.1:9154
			}`,
			zones: []string{"example.org.", "example.net."},
			fall:  []string{"example.net."},
			checks: []checker.Spec{
				{Name: "a", Kind: checker.HTTPS, Address: "127.0.0.1:443", Path: "/", Host: "www.example.org", Search: "all good",
					Interval: 30 * time.Second, ConnectTimeout: 3 * time.Second, ResponseTimeout: 1500 * time.Millisecond,
					FailureThreshold: 5, SuccessThreshold: 2, TLSVerify: true, Invert: true, Disable: true},
				{Name: "b", Kind: checker.TCP, Address: "127.0.0.1:25"},
				{Name: "c", Kind: checker.Calculated, Children: []string{"a", "b"}, HealthyThreshold: 1},
			},
			sets: []*setSpec{
				{name: "api.example.net.", qtype: dns.TypeCNAME, ttl: 5, onAllDown: allDownServfail, pos: position{"Testfile", 18}, members: []memberSpec{
					{tier: 1, alias: "web.example.net.", check: "c", weight: 3, pos: position{"Testfile", 20}},
					{tier: 2, value: "backup.example.com.", weight: 0, pos: position{"Testfile", 21}},
					{tier: 3, value: "last.example.com.", weight: 1, pos: position{"Testfile", 22}},
				}},
				{name: "web.example.net.", qtype: dns.TypeCNAME, ttl: 30, pos: position{"Testfile", 25}, members: []memberSpec{
					{tier: 1, value: "lb.example.com.", weight: -1, pos: position{"Testfile", 26}},
				}},
			},
			status: "127.0.0.1:9154",
		},
		{
			name: "grpc and grpcs, HTTP options, fast_interval",
			input: `healthfailover {
				check rpc grpcs://10.0.0.1:8443/shop.v1.Cart {
					host api.example.org
					tls_verify
					fast_interval 1s
				}
				check plain grpc://[::1]:50051/
				check web http://127.0.0.1/health {
					method HEAD
					header X-Token "s3cret value"
					header Accept application/json
					expect 200 204 300-302
					interval 5s
					fast_interval 500ms
				}
			}`,
			zones: []string{"example.org."},
			checks: []checker.Spec{
				{Name: "rpc", Kind: checker.GRPCS, Address: "10.0.0.1:8443", Path: "/shop.v1.Cart", Host: "api.example.org",
					TLSVerify: true, FastInterval: time.Second},
				{Name: "plain", Kind: checker.GRPC, Address: "[::1]:50051"},
				{Name: "web", Kind: checker.HTTP, Address: "127.0.0.1:80", Path: "/health", Method: "HEAD",
					Headers:  []checker.Header{{Name: "X-Token", Value: "s3cret value"}, {Name: "Accept", Value: "application/json"}},
					Expect:   []checker.StatusRange{{Low: 200, High: 200}, {Low: 204, High: 204}, {Low: 300, High: 302}},
					Interval: 5 * time.Second, FastInterval: 500 * time.Millisecond},
			},
		},
		{
			name: "option blocks on one line",
			input: `healthfailover {
				check a https://127.0.0.1/ { host www.example.org }
				check b http://127.0.0.1/ { interval 1s }
				check c calculated a b { healthy_threshold 1 }
				check d tcp://127.0.0.1:25 { }
				record www.example.org A { primary 127.0.0.1 check c }
				record api.example.org A { primary 127.0.0.2 }
				record v6.example.org AAAA {
					primary ::1 check d
				}
			}`,
			zones: []string{"example.org."},
			checks: []checker.Spec{
				{Name: "a", Kind: checker.HTTPS, Address: "127.0.0.1:443", Path: "/", Host: "www.example.org"},
				{Name: "b", Kind: checker.HTTP, Address: "127.0.0.1:80", Path: "/", Interval: time.Second},
				{Name: "c", Kind: checker.Calculated, Children: []string{"a", "b"}, HealthyThreshold: 1},
				{Name: "d", Kind: checker.TCP, Address: "127.0.0.1:25"},
			},
			sets: []*setSpec{
				{name: "www.example.org.", qtype: dns.TypeA, ttl: 30, pos: position{"Testfile", 6}, members: []memberSpec{
					{tier: 1, value: "127.0.0.1", check: "c", weight: -1, pos: position{"Testfile", 6}},
				}},
				{name: "api.example.org.", qtype: dns.TypeA, ttl: 30, pos: position{"Testfile", 7}, members: []memberSpec{
					{tier: 1, value: "127.0.0.2", weight: -1, pos: position{"Testfile", 7}},
				}},
				{name: "v6.example.org.", qtype: dns.TypeAAAA, ttl: 30, pos: position{"Testfile", 8}, members: []memberSpec{
					{tier: 1, value: "::1", check: "d", weight: -1, pos: position{"Testfile", 9}},
				}},
			},
		},
		{
			name: "SRV, MX and TXT values as dig prints them, a wildcard, degraded_ttl",
			input: `healthfailover {
				record _HTTP._tcp.example.org SRV {
					degraded_ttl 5
					primary 10 5 443 A.example.org
					secondary 20 0 8443 b.example.org.
				}
				record example.org MX { primary 10 Mail.example.org }
				record example.org TXT { primary "v=spf1 \"quoted\" -all" }
				record *.example.org A { primary 192.0.2.1 }
			}`,
			zones: []string{"example.org."},
			sets: []*setSpec{
				{name: "_http._tcp.example.org.", qtype: dns.TypeSRV, ttl: 30, degradedTTL: ptr(uint32(5)), pos: position{"Testfile", 2}, members: []memberSpec{
					{tier: 1, value: "10 5 443 a.example.org.", weight: -1, pos: position{"Testfile", 4}},
					{tier: 2, value: "20 0 8443 b.example.org.", weight: -1, pos: position{"Testfile", 5}},
				}},
				{name: "example.org.", qtype: dns.TypeMX, ttl: 30, pos: position{"Testfile", 7}, members: []memberSpec{
					{tier: 1, value: "10 mail.example.org.", weight: -1, pos: position{"Testfile", 7}},
				}},
				{name: "example.org.", qtype: dns.TypeTXT, ttl: 30, pos: position{"Testfile", 8}, members: []memberSpec{
					{tier: 1, value: `"v=spf1 \"quoted\" -all"`, weight: -1, pos: position{"Testfile", 8}},
				}},
				{name: "*.example.org.", qtype: dns.TypeA, ttl: 30, pos: position{"Testfile", 9}, members: []memberSpec{
					{tier: 1, value: "192.0.2.1", weight: -1, pos: position{"Testfile", 9}},
				}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseString(t, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.zones, tc.zones) {
				t.Errorf("zones %v, want %v", cfg.zones, tc.zones)
			}
			if !reflect.DeepEqual(cfg.checks, tc.checks) {
				t.Errorf("checks\n got %+v\nwant %+v", cfg.checks, tc.checks)
			}
			if !reflect.DeepEqual(cfg.sets, tc.sets) {
				t.Errorf("sets\n got %+v\nwant %+v", cfg.sets, tc.sets)
				for i := range cfg.sets {
					t.Logf("got set %+v", *cfg.sets[i])
				}
			}
			if len(tc.fall) > 0 && !reflect.DeepEqual(cfg.fall.Zones, tc.fall) {
				t.Errorf("fallthrough %v, want %v", cfg.fall.Zones, tc.fall)
			}
			if cfg.status != tc.status {
				t.Errorf("status %q, want %q", cfg.status, tc.status)
			}
		})
	}
}

// A diamond of aliases has exponentially many paths: it is refused at once
// with what is wrong, not expanded until memory runs out.
func TestParseAliasDiamondIsRefusedQuickly(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("healthfailover {\n")
	const depth = 40
	for i := range depth {
		fmt.Fprintf(&sb, "record a%d.example.org A {\nprimary alias b%d.example.org\nprimary alias c%d.example.org\n}\n", i, i, i)
		fmt.Fprintf(&sb, "record b%d.example.org A {\nprimary alias a%d.example.org\n}\n", i, i+1)
		fmt.Fprintf(&sb, "record c%d.example.org A {\nprimary alias a%d.example.org\n}\n", i, i+1)
	}
	fmt.Fprintf(&sb, "record a%d.example.org A {\nprimary 192.0.2.1\n}\n}", depth)
	start := time.Now()
	_, err := parseString(t, sb.String())
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusing %d alias levels took %s", depth, took)
	}
	want := "Testfile:2 - Error during parsing: record a0.example.org.: its aliases expand to more than 256 records; alias a set directly rather than through fanning chains"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestParseCluster(t *testing.T) {
	cfg, err := parseString(t, `healthfailover {
		cluster {
			bind 0.0.0.0:7000
			advertise 10.0.0.5
			join 10.0.0.6 peers.kube-system.svc.cluster.local:7000
			observers 2
			quorum 50
			key_file testdata/gossip-key
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.cluster
	if cc.node.Bind != "0.0.0.0:7000" || cc.node.Advertise != "10.0.0.5" || cc.observers != 2 || cc.quorum != 50 || len(cc.node.Key) != 32 {
		t.Errorf("cluster %+v", cc)
	}
	if want := []string{"10.0.0.6", "peers.kube-system.svc.cluster.local:7000"}; !reflect.DeepEqual(cc.node.Join, want) {
		t.Errorf("join %q, want %q", cc.node.Join, want)
	}

	cfg, err = parseString(t, `healthfailover {
		cluster { join 10.0.0.6 }
	}`)
	if err != nil {
		t.Fatal(err)
	}
	if cc := cfg.cluster; cc.node.Bind != "0.0.0.0:7946" || cc.node.Advertise != "" || cc.observers != 3 || cc.quorum != 18 || cc.node.Key != nil {
		t.Errorf("defaults: %+v", cc)
	}
	if cfg, _ := parseString(t, `healthfailover`); cfg.cluster != nil {
		t.Error("a cluster without the cluster block")
	}
}

func ptr[T any](v T) *T { return &v }
