package tunnel

import (
	"bufio"
	"io"
	"sync"
)

// readerPool holds handshake readers: a connection waiting for data holds none.
// 1 KiB holds a SOCKS5 greeting, login and request; an HTTP front reads longer
// heads through its own.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 1024) }}

// GetReader returns a pooled reader of r for a connection's handshake.
func GetReader(r io.Reader) *bufio.Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// PutReader gives br back to the pool; br must not be used afterwards.
func PutReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}
