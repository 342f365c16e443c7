package healthfailover

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin/pkg/reuseport"
)

// statusListeners are the process's status endpoints, one per address,
// each shared by every server block whose `status` names that address: two
// listeners on one address would fail to bind ("address already in use"),
// or with SO_REUSEPORT silently split the requests between two documents.
// It is package state for the same reason the ready plugin's address list
// is: the blocks are separate plugin instances and only the process sees
// them all. plugin/pkg/uniq is not enough here: it starts a listener once
// per address but does not know who uses it, and this document is made of
// its users' entries, and must close when the last of them leaves.
var statusListeners = statusRegistry{byAddr: map[string]*statusListener{}}

type statusRegistry struct {
	mu     sync.Mutex
	byAddr map[string]*statusListener
}

// statusListener is one status address: its HTTP server and the handlers
// (server blocks) whose entries it lists.
type statusListener struct {
	ln  net.Listener
	srv *http.Server
	// members are sorted by block, so that the document is sorted by
	// block, then by name, without sorting entries per request. Guarded
	// by the registry's mu; replaced, never modified in place, so a
	// request may keep reading the slice it took.
	members []*HealthFailover
}

// statusShutdownTimeout bounds how long a closing status server waits for
// requests in flight before it drops their connections, so that a reader
// who stalls cannot keep an old configuration alive.
const statusShutdownTimeout = time.Second

// join makes h a member of the listener at addr, opening it if h is the
// first. Joining twice is a no-op: OnStartup and OnRestartFailed may both
// run for one handler.
func (r *statusRegistry) join(addr string, h *HealthFailover) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l, ok := r.byAddr[addr]; ok {
		if !slices.Contains(l.members, h) {
			l.members = withMember(l.members, h)
		}
		return nil
	}
	// SO_REUSEPORT as the ready and health plugins listen: another CoreDNS
	// started before this one exits (a rolling restart on the host
	// network) can bind the same address.
	ln, err := reuseport.Listen("tcp", addr)
	if err != nil {
		return err
	}
	l := &statusListener{ln: ln, members: []*HealthFailover{h}}
	l.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { serveStatus(w, req, r.membersOf(l)) }),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	r.byAddr[addr] = l
	go l.srv.Serve(ln)
	return nil
}

// leave removes h from the listener at addr, and closes the listener when
// no member is left. Leaving twice is a no-op: OnRestart and OnShutdown
// both run for one handler on a reload.
func (r *statusRegistry) leave(addr string, h *HealthFailover) error {
	r.mu.Lock()
	l, ok := r.byAddr[addr]
	if !ok || !slices.Contains(l.members, h) {
		r.mu.Unlock()
		return nil
	}
	l.members = slices.DeleteFunc(slices.Clone(l.members), func(m *HealthFailover) bool { return m == h })
	if len(l.members) > 0 {
		r.mu.Unlock()
		return nil
	}
	delete(r.byAddr, addr)
	// Closed before the lock is released, so that a configuration joining
	// right after never shares the address with a socket that is going away
	// (its queued connections would be reset).
	l.ln.Close()
	r.mu.Unlock()

	// Outside the lock: Shutdown waits for requests in flight, and those
	// may be about to take the lock to read their members.
	ctx, cancel := context.WithTimeout(context.Background(), statusShutdownTimeout)
	defer cancel()
	if err := l.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		// A reader that stalls is dropped rather than waited for.
		l.srv.Close()
	}
	return nil
}

// membersOf returns l's members as they are now.
func (r *statusRegistry) membersOf(l *statusListener) []*HealthFailover {
	r.mu.Lock()
	defer r.mu.Unlock()
	return l.members
}

// withMember returns a new slice: members with h, sorted by block, h after
// members of an equal block.
func withMember(members []*HealthFailover, h *HealthFailover) []*HealthFailover {
	i, _ := slices.BinarySearchFunc(members, h.table.block, func(m *HealthFailover, block string) int {
		if m.table.block <= block {
			return -1
		}
		return 1
	})
	return slices.Insert(slices.Clone(members), i, h)
}

// startStatus joins the status listener at the configured address, if any.
func (h *HealthFailover) startStatus() error {
	if h.status == "" {
		return nil
	}
	return statusListeners.join(h.status, h)
}

// stopStatus leaves the status listener; it may run more than once.
func (h *HealthFailover) stopStatus() error {
	if h.status == "" {
		return nil
	}
	return statusListeners.leave(h.status, h)
}
