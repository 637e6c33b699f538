package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
)

// readerPool holds the readers of request heads, which must hold a whole head:
// a connection waiting for its next request holds none.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxHeadBytes) }}

func getReader(r io.Reader) *bufio.Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

// maxLeadingEmpty is how many empty lines may come before a request line: RFC
// 9112 section 2.2 asks servers to skip at least one, which some clients send
// after a request body.
const maxLeadingEmpty = 4

var errTooLarge = &headError{http.StatusRequestHeaderFieldsTooLarge, "request head over 16 KiB"}

// readHead reads one request head from br and parses it. The head's bytes are
// consumed, and the body (if any) is left in br. An error other than a
// *headError is the connection's (closed, deadline).
func readHead(br *bufio.Reader) (*Request, error) {
	if err := skipEmptyLines(br); err != nil {
		return nil, err
	}
	n, err := headLength(br)
	if err != nil {
		return nil, err
	}
	head, _ := br.Peek(n)
	req, err := ParseRequest(head)
	br.Discard(n)
	return req, err
}

func skipEmptyLines(br *bufio.Reader) error {
	for range maxLeadingEmpty {
		b, err := br.Peek(2)
		if err != nil {
			return err
		}
		if string(b) != "\r\n" {
			return nil
		}
		br.Discard(2)
	}
	return nil
}

// headLength waits until br holds a whole head, ended by an empty line (CRLF
// CRLF, or a bare LF for ParseRequest to refuse), and returns its length. It
// searches only the bytes that arrived since the last look.
func headLength(br *bufio.Reader) (int, error) {
	searched := 0
	for {
		b, err := br.Peek(br.Buffered())
		for searched < len(b) {
			i := bytes.IndexByte(b[searched:], '\n')
			if i < 0 {
				searched = len(b)
				break
			}
			end := searched + i + 1
			if end >= 2 && b[end-2] == '\n' || end >= 3 && string(b[end-3:end]) == "\n\r\n" {
				return end, nil
			}
			searched = end
		}
		if len(b) == br.Size() {
			return 0, errTooLarge
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return 0, err
		}
		if _, err := br.Peek(len(b) + 1); err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if len(b) > 0 && errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}
