// Package e2e runs the plugin end to end with real parts: a CoreDNS binary
// built from ./cmd/coredns and run as a process, nginx web servers on
// loopback addresses, and dig and miekg/dns as clients. It holds only tests:
// `go test ./e2e/...` (nginx and dig are needed: apt-get install nginx-light
// bind9-dnsutils).
package e2e
