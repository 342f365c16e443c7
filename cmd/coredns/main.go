// Command coredns is CoreDNS with every in-tree plugin plus healthfailover,
// which runs just before hosts (after cache).
package main

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // every in-tree plugin
	"github.com/coredns/coredns/coremain"
	_ "github.com/healthfailover/healthfailover"
)

func init() {
	i := slices.Index(dnsserver.Directives, "hosts")
	dnsserver.Directives = slices.Insert(dnsserver.Directives, i, "healthfailover")
}

func main() {
	coremain.Run()
}
