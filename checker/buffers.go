package checker

import (
	"bufio"
	"compress/gzip"
	"io"
	"sync"
)

// buffers recycles what an http probe needs for reading, shared by the
// checks of one Checker: at ten thousand probes a second, allocating them
// anew would keep the garbage collector busy.
type buffers struct {
	readers sync.Pool // *bufio.Reader
	search  sync.Pool // *[]byte, SearchLimit long
	gzips   sync.Pool // *gzip.Reader
}

func newBuffers() *buffers {
	b := &buffers{}
	b.readers.New = func() any { return bufio.NewReaderSize(nil, 4096) }
	b.search.New = func() any { buf := make([]byte, SearchLimit); return &buf }
	return b
}

func (b *buffers) getReader(r io.Reader) *bufio.Reader {
	br := b.readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func (b *buffers) putReader(br *bufio.Reader) {
	br.Reset(nil)
	b.readers.Put(br)
}

func (b *buffers) getSearch() *[]byte { return b.search.Get().(*[]byte) }

func (b *buffers) putSearch(buf *[]byte) { b.search.Put(buf) }

// getGzip returns a gzip reader over r, having read the gzip header.
func (b *buffers) getGzip(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := b.gzips.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			b.gzips.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

func (b *buffers) putGzip(zr *gzip.Reader) { b.gzips.Put(zr) }
