//go:build !linux

package e2e

import (
	"errors"
	"net"
	"time"
)

// dialIn dials addr; network namespaces are Linux's, so ns must be "".
func dialIn(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	if ns != "" {
		return nil, errors.New("network namespaces need Linux")
	}
	return net.DialTimeout(network, addr, timeout)
}
