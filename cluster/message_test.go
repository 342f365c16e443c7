package cluster

import (
	"bytes"
	"testing"
	"time"
)

func sampleViews() []View {
	return []View{
		{Check: "dns://example.org.:53 east 00ff", Origin: "dns-1-a1b2c3d4", Seq: 7, Healthy: true,
			Since: time.Unix(1700000000, 123), Reason: "ok", Message: "status 200"},
		{Check: "dns://example.org.:53 west 00ee", Origin: "dns-2-a1b2c3d4", Seq: 1 << 40, Healthy: false,
			Since: time.Unix(0, 0), Reason: "connect_refused", Message: "connect: connection refused after 3 consecutive failures", Age: 1500 * time.Millisecond},
	}
}

func TestViewsRoundTrip(t *testing.T) {
	want := sampleViews()
	got, err := decodeViews(appendViews(nil, want))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d views, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Since.Equal(want[i].Since) {
			t.Errorf("view %d: since %v, want %v", i, got[i].Since, want[i].Since)
		}
		got[i].Since = want[i].Since
		if got[i] != want[i] {
			t.Errorf("view %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestLongMessageIsCutOnARuneBoundary(t *testing.T) {
	v := sampleViews()[0]
	v.Message = string(bytes.Repeat([]byte("é"), maxString)) // 2 bytes each
	got, err := decodeViews(appendViews(nil, []View{v}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Message) > maxString || len(got[0].Message)%2 != 0 {
		t.Errorf("message of %d bytes, want at most %d and whole runes", len(got[0].Message), maxString)
	}
}

// Every way a packet can be wrong is refused whole: nothing of a message
// that does not decode exactly is used.
func TestMalformedMessagesAreRefused(t *testing.T) {
	good := appendViews(nil, sampleViews())
	cases := map[string][]byte{
		"empty":          {},
		"other version":  append([]byte{2}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"huge count":     {messageVersion, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"count too high": append([]byte{messageVersion, 3}, good[2:]...),
		"bad healthy":    bytes.Replace(good, []byte{7, 1}, []byte{7, 9}, 1),
		"no views":       {messageVersion, 1},
		"empty check":    appendViews(nil, []View{{Origin: "a"}}),
		"empty origin":   appendViews(nil, []View{{Check: "a"}}),
		// 1 written in two bytes: a second way of writing the same view.
		"long varint": {messageVersion, 0x81, 0x00},
	}
	for name, b := range cases {
		if views, err := decodeViews(b); err == nil {
			t.Errorf("%s: decoded %d views, want an error", name, len(views))
		}
	}
}

func FuzzDecodeViews(f *testing.F) {
	f.Add(appendViews(nil, sampleViews()))
	f.Add(appendViews(nil, nil))
	f.Add([]byte{messageVersion, 1, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		views, err := decodeViews(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes: the format has one
		// way of writing each message, so a forged variant cannot pass
		// for a view it is not.
		if again := appendViews(nil, views); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v from %x, which encodes to %x", views, b, again)
		}
	})
}
