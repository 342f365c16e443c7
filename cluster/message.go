package cluster

import (
	"encoding/binary"
	"errors"
	"time"
)

// View is one member's view of one check: what its own probes and
// thresholds say. Views travel between members; every member derives the
// agreed health of a check from the views of the check's observers.
type View struct {
	// Check identifies the check across the cluster: its server block,
	// name and definition (see Key), so that two replicas briefly running
	// different definitions during a rolling update never mix their views.
	Check  string
	Origin string // the member that probed
	// Seq orders the views of one origin: a view never replaces one with
	// a higher Seq, so a late packet cannot undo a newer view.
	Seq     uint64
	Healthy bool
	Since   time.Time // when this member's health of the check last changed
	Reason  string
	Message string
	// Age is how old the view already was when it was sent: zero when the
	// origin sends it, the time since it arrived when a member passes it on
	// in a full-state exchange, so that passing it on does not refresh it.
	Age time.Duration
}

// messageVersion is the first byte of every message of ours, so that a
// future format is told apart, and garbage mostly fails at once.
const messageVersion = 1

// Limits on what a decoded message may hold, so that a hostile packet
// cannot make a member allocate much.
const (
	maxString    = 1024
	maxViews     = 1 << 20
	maxFieldSize = 10 // bytes of a varint
	maxAge       = 24 * time.Hour
)

var errMalformed = errors.New("malformed message")

// appendViews encodes views as one message.
func appendViews(dst []byte, views []View) []byte {
	dst = append(dst, messageVersion)
	dst = binary.AppendUvarint(dst, uint64(len(views)))
	for _, v := range views {
		dst = appendString(dst, v.Check)
		dst = appendString(dst, v.Origin)
		dst = binary.AppendUvarint(dst, v.Seq)
		healthy := byte(0)
		if v.Healthy {
			healthy = 1
		}
		dst = append(dst, healthy)
		dst = binary.AppendVarint(dst, v.Since.UnixNano())
		dst = appendString(dst, v.Reason)
		dst = appendString(dst, truncate(v.Message, maxString))
		dst = binary.AppendUvarint(dst, uint64(max(v.Age, 0)/time.Millisecond))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// truncate cuts s to at most n bytes, on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// decodeViews reads one message; any deviation from the format, trailing
// bytes included, is an error and nothing of the message is used.
func decodeViews(b []byte) ([]View, error) {
	d := decoder{b: b}
	if d.byte() != messageVersion {
		return nil, errMalformed
	}
	n := d.uvarint()
	// Every view takes at least 8 bytes: a cheap bound before allocating.
	if d.err != nil || n > maxViews || n > uint64(len(d.b))/8 {
		return nil, errMalformed
	}
	views := make([]View, 0, n)
	for range n {
		var v View
		v.Check = d.string()
		v.Origin = d.string()
		v.Seq = d.uvarint()
		switch d.byte() {
		case 0:
		case 1:
			v.Healthy = true
		default:
			return nil, errMalformed
		}
		v.Since = time.Unix(0, d.varint())
		v.Reason = d.string()
		v.Message = d.string()
		age := d.uvarint()
		if age > uint64(maxAge/time.Millisecond) {
			return nil, errMalformed
		}
		v.Age = time.Duration(age) * time.Millisecond
		if d.err != nil {
			return nil, d.err
		}
		if v.Check == "" || v.Origin == "" {
			return nil, errMalformed
		}
		views = append(views, v)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errMalformed
	}
	return views, nil
}

// decoder reads a message front to back; its first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errMalformed
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	// Only the shortest encoding: one message, one way of writing it.
	if n <= 0 || n > maxFieldSize || n != uvarintSize(v) {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || n > maxFieldSize || n != varintSize(v) {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxString || n > uint64(len(d.b)) {
		d.err = errMalformed
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func uvarintSize(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

func varintSize(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}
