// Package inprocess runs CoreDNS inside the calling process, with every
// in-tree plugin and healthfailover in its place in the plugin order (just
// before hosts, as cmd/coredns puts it): the launcher of the black-box tests
// and the demo. The caller imports the healthfailover package, which
// registers the plugin; this package cannot, so that the plugin's own tests
// may use it.
package inprocess

import (
	"slices"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // every in-tree plugin
)

const pluginName = "healthfailover"

var placeOnce sync.Once

// PlaceDirective puts healthfailover in CoreDNS's plugin order just before
// hosts, once. Start calls it; tests that parse whole Corefiles without
// starting them call it too.
func PlaceDirective() {
	placeOnce.Do(func() {
		if slices.Contains(dnsserver.Directives, pluginName) {
			return
		}
		i := slices.Index(dnsserver.Directives, "hosts")
		dnsserver.Directives = slices.Insert(dnsserver.Directives, i, pluginName)
	})
}

// startMu serialises starts: caddy's start-up is not safe to run twice at once.
var startMu sync.Mutex

// Start runs CoreDNS on a Corefile, quietly (no start-up banner).
func Start(corefile string) (*caddy.Instance, error) {
	PlaceDirective()
	startMu.Lock()
	defer startMu.Unlock()
	caddy.Quiet, dnsserver.Quiet = true, true
	return caddy.Start(Input(corefile))
}

// Input is a Corefile as caddy reads one.
func Input(corefile string) caddy.Input {
	return caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"}
}

// Addrs returns the UDP and TCP addresses of the k-th server of an instance,
// or empty strings if it has fewer.
func Addrs(i *caddy.Instance, k int) (udp, tcp string) {
	srvs := i.Servers()
	if len(srvs) <= k {
		return "", ""
	}
	if a := srvs[k].LocalAddr(); a != nil {
		udp = a.String()
	}
	if a := srvs[k].Addr(); a != nil {
		tcp = a.String()
	}
	return udp, tcp
}

// Stop does what CoreDNS does on SIGTERM: the plugins' shutdown callbacks
// (the health checks stop), then the servers. An instance that a reload has
// replaced was shut down by the reload, and is left alone.
func Stop(i *caddy.Instance) {
	if !slices.Contains(caddy.Instances(), i) {
		return
	}
	i.ShutdownCallbacks()
	i.Stop()
}
