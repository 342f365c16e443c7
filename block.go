package healthfailover

import (
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// blockName names the controller's server block by its keys as CoreDNS
// normalises them ("dns://example.org.:1301"), several keys joined by a
// space. The zones alone would not do: example.org:1301 and
// example.org:1302 are two blocks with the same zones.
func blockName(c *caddy.Controller) string {
	keyIndex := c.ServerBlockKeyIndex
	defer func() { c.ServerBlockKeyIndex = keyIndex }()
	names := make([]string, 0, len(c.ServerBlockKeys))
	for i, key := range c.ServerBlockKeys {
		c.ServerBlockKeyIndex = i
		cfg := dnsserver.GetConfig(c)
		if cfg.Zone == "" {
			// A test controller has no normalised configs.
			names = append(names, key)
			continue
		}
		names = append(names, cfg.Transport+"://"+cfg.Zone+":"+cfg.Port)
	}
	return strings.Join(names, " ")
}
