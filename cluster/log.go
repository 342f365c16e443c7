package cluster

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"
)

// logWriter takes memberlist's log lines ("[WARN] memberlist: …") and
// passes them to the node's Logger at their level, dropping DEBUG, and at
// most one line a second: a peer sending garbage makes memberlist log a
// line per packet, which must not flood CoreDNS's log.
type logWriter struct {
	log Logger

	mu         sync.Mutex
	last       time.Time
	suppressed int
	// closed drops what memberlist's goroutines still log after the node
	// stopped (its Shutdown does not wait for them): those lines are about
	// the closing itself, and the Logger may be gone.
	closed bool
}

func (w *logWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	if i := strings.Index(line, "["); i > 0 {
		line = line[i:] // memberlist's own time stamp: CoreDNS's log has its own
	}
	if strings.HasPrefix(line, "[DEBUG]") {
		return len(p), nil
	}
	w.mu.Lock()
	now := time.Now()
	if w.closed {
		w.mu.Unlock()
		return len(p), nil
	}
	if now.Sub(w.last) < time.Second {
		w.suppressed++
		w.mu.Unlock()
		return len(p), nil
	}
	w.last = now
	if w.suppressed > 0 {
		line += " (and " + strconv.Itoa(w.suppressed) + " more lines of memberlist's in the last second)"
		w.suppressed = 0
	}
	w.mu.Unlock()

	switch {
	case strings.HasPrefix(line, "[ERR]"):
		w.log.Errorf("cluster: %s", strings.TrimSpace(strings.TrimPrefix(line, "[ERR]")))
	case strings.HasPrefix(line, "[WARN]"):
		w.log.Warningf("cluster: %s", strings.TrimSpace(strings.TrimPrefix(line, "[WARN]")))
	default:
		w.log.Infof("cluster: %s", strings.TrimSpace(strings.TrimPrefix(line, "[INFO]")))
	}
	return len(p), nil
}
