package healthfailover

import (
	"fmt"
	"hash/fnv"
	"net"
	"strconv"

	"github.com/coredns/caddy"
	"github.com/healthfailover/healthfailover/checker"
	"github.com/healthfailover/healthfailover/cluster"
)

// clusterConfig is a `cluster` block: the gossip node it runs on and how
// this block's checks are shared.
type clusterConfig struct {
	node      cluster.Config
	keyFile   string
	observers int
	quorum    int
}

// parseCluster reads `cluster { … }`. The key file is read here, at setup,
// so that a missing or malformed key refuses the configuration with its
// line instead of failing later.
func parseCluster(c *caddy.Controller, args []string) (*clusterConfig, error) {
	cc := &clusterConfig{node: cluster.Config{Bind: cluster.DefaultBind}, observers: cluster.DefaultObservers, quorum: cluster.DefaultQuorum}
	if len(args) > 0 || !openBlock(c) {
		return nil, c.Err("cluster takes a block: cluster { join PEER... }")
	}
	seen := map[string]bool{}
	err := blockOptions(c, func(name string, args []string) error {
		if seen[name] {
			return c.Errf("cluster: %s is given twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "bind":
			cc.node.Bind, err = addressArg(c, name, args)
		case "advertise":
			cc.node.Advertise, err = addressArg(c, name, args)
		case "join":
			if len(args) == 0 {
				return c.Err("cluster: join needs at least one peer: an address or a DNS name, with an optional :PORT")
			}
			for _, p := range args {
				if _, _, err := cluster.ParseHostPort(p, cluster.DefaultPort); err != nil {
					return c.Errf("cluster: join: %v", err)
				}
			}
			cc.node.Join = args
		case "resolver":
			cc.node.Resolver, err = addressArg(c, name, args)
		case "observers":
			cc.observers, err = intArg(c, name, args, 1, 100)
		case "quorum":
			cc.quorum, err = intArg(c, name, args, 0, 99)
		case "key_file":
			if cc.keyFile, err = oneArg(c, args); err != nil {
				return err
			}
			if cc.node.Key, err = cluster.LoadKey(cc.keyFile); err != nil {
				return c.Errf("cluster: %v", err)
			}
		default:
			return c.Errf("cluster: unknown option %q", name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return cc, nil
}

// addressArg is an IP address with an optional port: memberlist binds to
// and advertises addresses, not names. Without a port, bind has 7946,
// advertise the bind port and resolver 53.
func addressArg(c *caddy.Controller, name string, args []string) (string, error) {
	v, err := oneArg(c, args)
	if err != nil {
		return "", err
	}
	host, port, err := cluster.ParseHostPort(v, 0)
	if err != nil {
		return "", c.Errf("cluster: %s: %v", name, err)
	}
	if net.ParseIP(host) == nil {
		return "", c.Errf("cluster: %s %q: want an IP address with a port, like 10.0.0.5:7946", name, v)
	}
	switch {
	case port != 0:
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	case name == "bind":
		return net.JoinHostPort(host, strconv.Itoa(cluster.DefaultPort)), nil
	case name == "resolver":
		return net.JoinHostPort(host, "53"), nil
	}
	return host, nil
}

// clusterChecks are the checks a block shares: those that probe (see
// probingSpecs).
func clusterChecks(block string, specs []checker.Spec) []cluster.Check {
	var out []cluster.Check
	for _, s := range specs {
		out = append(out, cluster.Check{Name: s.Name, Key: clusterKey(block, s), Interval: s.Interval})
	}
	return out
}

// clusterKey identifies a check across replicas: its block, its name and
// its whole definition, so that during a rolling update that changes a
// check, the views of the old definition never count for the new one.
func clusterKey(block string, s checker.Spec) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%#v", s.WithDefaults())
	return fmt.Sprintf("%s %s %016x", block, s.Name, h.Sum64())
}
