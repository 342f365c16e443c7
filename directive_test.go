package healthfailover

import (
	"slices"
	"sync"

	"github.com/coredns/coredns/core/dnsserver"
)

var directiveOnce sync.Once

// ensureDirective puts healthfailover in CoreDNS's plugin order just before
// hosts, as cmd/coredns does, for tests that load whole Corefiles.
func ensureDirective() {
	directiveOnce.Do(func() {
		if slices.Contains(dnsserver.Directives, pluginName) {
			return
		}
		i := slices.Index(dnsserver.Directives, "hosts")
		dnsserver.Directives = slices.Insert(dnsserver.Directives, i, pluginName)
	})
}
