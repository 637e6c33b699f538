package httpproxy

import (
	"bufio"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// hopByHop are the fields that concern one connection and are never forwarded
// (RFC 9110 section 7.6.1), plus the framing fields the proxy writes itself
// and Proxy-Connection, which old clients send instead of Connection.
var hopByHop = []string{
	"connection", "proxy-connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
	"te", "trailer", "transfer-encoding", "upgrade", "content-length",
}

// isHop reports whether a field is not to be forwarded: hop-by-hop, or named
// in the message's Connection field (listed, lower case).
func isHop(name string, listed []string) bool {
	lower := strings.ToLower(name)
	return slices.Contains(hopByHop, lower) || slices.Contains(listed, lower)
}

// requestHead is the head the proxy sends an origin for req: origin-form, Host
// from the URI (RFC 9112 section 3.2.2), the client's fields less the
// hop-by-hop ones and Expect (the proxy answers 100-continue itself), Via,
// X-Forwarded-For when forwardedFor is not empty, and the body's framing.
func requestHead(req *Request, d destination, forwardedFor string) []byte {
	b := make([]byte, 0, 512)
	b = append(append(append(b, req.Method...), ' '), d.path...)
	b = append(b, " HTTP/1.1\r\n"...)
	b = appendField(b, "Host", d.authority)
	var xff []string
	for _, f := range req.Fields {
		switch {
		case isHop(f.Name, req.Hop), strings.EqualFold(f.Name, "Host"), strings.EqualFold(f.Name, "Expect"):
		case forwardedFor != "" && strings.EqualFold(f.Name, "X-Forwarded-For"):
			xff = append(xff, f.Value)
		default:
			b = appendField(b, f.Name, f.Value)
		}
	}
	b = appendField(b, "Via", via)
	if forwardedFor != "" {
		b = appendField(b, "X-Forwarded-For", strings.Join(append(xff, forwardedFor), ", "))
	}
	switch {
	case req.Chunked:
		b = appendField(b, "Transfer-Encoding", strings.Join(append(slices.Clone(req.Codings), "chunked"), ", "))
	case req.ContentLength >= 0:
		b = appendField(b, "Content-Length", strconv.FormatInt(req.ContentLength, 10))
	}
	return append(b, "\r\n"...)
}

// responseHead is the head the proxy sends its client for resp: HTTP/1.1, the
// origin's fields less the hop-by-hop ones, Via, the framing the proxy chose
// (length: Content-Length, or -1 for chunked, or -2 for none) and Connection:
// close when the connection ends after it. listed are further field names (lower
// case) not to forward: those of a Connection field net/http dropped. Fields are
// written in name order, as net/http holds them in a map.
func responseHead(resp *http.Response, length int64, closing bool, listed []string) []byte {
	b := make([]byte, 0, 512)
	b = append(append(append(b, "HTTP/1.1 "...), resp.Status...), "\r\n"...)
	listed = append(listed, listedFields(resp.Header)...)
	for _, name := range slices.Sorted(maps.Keys(resp.Header)) {
		if isHop(name, listed) {
			continue
		}
		for _, v := range resp.Header[name] {
			if !strings.ContainsAny(v, "\r\n\x00") {
				b = appendField(b, name, v)
			}
		}
	}
	b = appendField(b, "Via", via)
	switch {
	case length >= 0:
		b = appendField(b, "Content-Length", strconv.FormatInt(length, 10))
	case length == -1:
		b = appendField(b, "Transfer-Encoding", "chunked")
	}
	if closing {
		b = appendField(b, "Connection", "close")
	}
	return append(b, "\r\n"...)
}

// listedFields returns the field names a Connection field lists, lower case.
func listedFields(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Connection") {
		out = append(out, splitList(strings.ToLower(v))...)
	}
	return out
}

// chunkPool holds the buffers chunkWriter frames a chunk in.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, 33<<10); return &b }}

// chunkWriter writes each Write as one chunk of the chunked coding, in one
// write: size line, data and CRLF together.
type chunkWriter struct{ w io.Writer }

func (c chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	b := strconv.AppendInt((*bp)[:0], int64(len(p)), 16)
	b = append(append(append(b, "\r\n"...), p...), "\r\n"...)
	*bp = b[:0]
	if _, err := c.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lastChunk ends a chunked body with trailer fields.
func lastChunk(trailer http.Header) []byte {
	b := []byte("0\r\n")
	for _, name := range slices.Sorted(maps.Keys(trailer)) {
		if isHop(name, nil) {
			continue
		}
		for _, v := range trailer[name] {
			if !strings.ContainsAny(v, "\r\n\x00") {
				b = appendField(b, name, v)
			}
		}
	}
	return append(b, "\r\n"...)
}

// skipTrailer reads the trailer section of a chunked request body up to its
// empty line, with the head's bounds. A request's trailer fields are not
// forwarded (RFC 9112 section 7.1.2 lets a recipient that removes the chunked
// coding discard them).
func skipTrailer(br *bufio.Reader) error {
	total := 0
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if total += len(line); total > maxHeadBytes || n > maxFields {
			return errTooLarge
		}
		if string(line) == "\r\n" {
			return nil
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return badRequest("trailer line ends with a bare LF")
		}
		if _, err := parseField(line[:len(line)-2]); err != nil {
			return err
		}
	}
}
