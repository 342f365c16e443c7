package healthfailover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/healthfailover/healthfailover/checker"
	"github.com/miekg/dns"
)

// overrideWatch re-reads an override file when it changes. It polls: a
// Kubernetes ConfigMap is updated by swapping a symlink, which file
// notifications on the file itself miss, and reading a small file once a
// second costs nothing.
type overrideWatch struct {
	h    *HealthFailover
	path string

	last    []byte    // the content applied; nil before the first read
	current overrides // what it says
	missing bool      // the file was missing at the last read
	errors  bool      // the applied version had lines set aside

	cancel context.CancelFunc
	done   sync.WaitGroup
	once   sync.Once
}

// overridePoll is how often the file is looked at: a change applies within it.
const overridePoll = time.Second

// maxOverrideFile bounds what is read of the file.
const maxOverrideFile = 1 << 20

// startOverrides applies the file as it is now, before the first query is
// answered, and watches it; nothing without `override`.
func (h *HealthFailover) startOverrides() {
	if h.overridePath == "" {
		return
	}
	w := &overrideWatch{h: h, path: h.overridePath}
	w.check()
	h.overrides = w
}

// stopOverrides stops the watch; it may be called more than once.
func (h *HealthFailover) stopOverrides() {
	if w := h.overrides; w != nil && w.cancel != nil {
		w.once.Do(func() {
			w.cancel()
			w.done.Wait()
		})
	}
}

func (w *overrideWatch) run(ctx context.Context) {
	defer w.done.Done()
	tick := time.NewTicker(overridePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.check()
		}
	}
}

// check reads the file and applies it when it changed. A missing file means
// no overrides, said once.
func (w *overrideWatch) check() {
	text, err := readOverrideFile(w.path)
	block := w.h.table.block
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !w.missing {
			log.Warningf("%s: override %s: no such file: no overrides until it exists", block, w.path)
			w.missing = true
			w.last = []byte{}
			w.apply(overrides{})
		}
		return
	case err != nil:
		// Unreadable for now (permissions, a directory): keep what applies.
		if w.last == nil || !w.missing {
			log.Errorf("%s: override %s: %v; the overrides read before still apply", block, w.path, err)
		}
		w.missing = true
		return
	}
	w.missing = false
	if w.last != nil && bytes.Equal(text, w.last) {
		return
	}
	w.last = text
	o := parseOverrides(w.path, text, func(name string) bool { _, ok := w.h.checks.State(name); return ok }, w.h.table)
	for _, e := range o.errors {
		log.Errorf("%s: override %s", block, e)
	}
	if len(o.errors) == 0 && w.errors {
		log.Infof("%s: override %s: every line applies", block, w.path)
	}
	w.errors = len(o.errors) > 0
	overrideErrors.WithLabelValues(block).Set(float64(len(o.errors)))
	w.apply(o)
}

// reapplyOverrides applies the file as last read once more, after the
// checkers started, and starts watching it.
func (h *HealthFailover) reapplyOverrides() {
	w := h.overrides
	if w == nil {
		return
	}
	w.apply(w.current)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done.Add(1)
	go w.run(ctx)
}

func readOverrideFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, maxOverrideFile+1))
	if err == nil && len(text) > maxOverrideFile {
		err = fmt.Errorf("larger than %d bytes", maxOverrideFile)
	}
	return text, err
}

// apply makes the checks and record sets follow o, logging one line per
// override that came, went or changed.
func (w *overrideWatch) apply(o overrides) {
	w.current = o
	h, block := w.h, w.h.table.block
	for _, spec := range h.checks.Specs() {
		want := o.checks[spec.Name]
		st, _ := h.checks.State(spec.Name)
		if st.Forced == want.force && st.ForcedBy == want.by && st.ForceReason == want.reason {
			continue
		}
		h.checks.Force(spec.Name, want.force, want.by, want.reason)
		switch {
		case st.Forced == want.force && st.ForceReason == want.reason:
			// Only moved in the file: nothing to say.
		case want.force == checker.ForceNone:
			log.Infof("%s: check %s: override removed, the probes say %s", block, spec.Name, healthWord(st.Probed))
		default:
			log.Infof("%s: check %s: forced %s by override%s at %s", block, spec.Name, want.force, inParens(want.reason), want.by)
		}
	}
	added, removed := h.table.setDrained(o.drains)
	for _, d := range added {
		log.Infof("%s: drain %s %s %s: drained by override%s at %s", block, d.set.name, dns.TypeToString[d.set.qtype], d.value, inParens(d.drain.reason), d.drain.by)
	}
	for _, d := range removed {
		log.Infof("%s: drain %s %s %s: drain removed", block, d.set.name, dns.TypeToString[d.set.qtype], d.value)
	}
}

func inParens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
