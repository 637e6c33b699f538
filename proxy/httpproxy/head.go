package httpproxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Bounds of a request head. 16 KiB holds the longest cookies and URLs browsers
// send (Chromium caps a URL at 2 MiB but real ones stay far below; servers such
// as nginx default to 8 KiB lines); 100 fields is twice what a browser sends.
const (
	maxHeadBytes = 16 << 10
	maxFields    = 100
)

// Request is a parsed request head. Field names keep the client's spelling;
// lookups ignore case.
type Request struct {
	Method string
	Target string // the request-target as sent
	Minor  int    // HTTP/1.Minor: 0 or 1
	Fields []Field

	// ContentLength is the body's length from Content-Length; -1 when the body
	// is chunked or there is none (then Chunked says which).
	ContentLength int64
	Chunked       bool
	// Codings are the transfer codings before the final chunked, which a
	// forwarded request keeps ("gzip" of "gzip, chunked").
	Codings []string
	Host    string   // the Host field; "" without one
	Close   bool     // the client asked to close after this request
	Hop     []string // the field names Connection lists, lower case
}

// Field is one header field line.
type Field struct{ Name, Value string }

// headError is a request head the front refuses, with the status it answers.
type headError struct {
	status int
	msg    string
}

func (e *headError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &headError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// statusOf returns the status a head error is answered with.
func statusOf(err error) int {
	var he *headError
	if errors.As(err, &he) {
		return he.status
	}
	return http.StatusBadRequest
}

// ParseRequest parses a complete request head, from the request line to the
// empty line that ends it, strictly: every line ends in CRLF (a bare LF or CR
// is refused), the request line has single spaces, field names are tokens with
// no space before the colon, values hold no control characters, and a line
// folded onto the one before (obs-fold) is refused. Smuggling forms are
// refused: Content-Length with Transfer-Encoding, a Content-Length that is
// repeated, a list or not a number, a Transfer-Encoding whose last coding is not
// chunked or that names chunked twice, and Transfer-Encoding in HTTP/1.0. An
// HTTP/1.1 request needs exactly one Host; HTTP/1.0 at most one. The errors
// carry the status to answer: 400, 431 (too many fields) or 505 (a version other
// than HTTP/1.0 and 1.1).
func ParseRequest(head []byte) (*Request, error) {
	if len(head) > maxHeadBytes {
		return nil, &headError{http.StatusRequestHeaderFieldsTooLarge, "request head over 16 KiB"}
	}
	line, rest, err := nextLine(head)
	if err != nil {
		return nil, err
	}
	r := &Request{ContentLength: -1}
	if err := r.parseRequestLine(line); err != nil {
		return nil, err
	}
	for {
		if line, rest, err = nextLine(rest); err != nil {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if len(r.Fields) == maxFields {
			return nil, &headError{http.StatusRequestHeaderFieldsTooLarge, "more than 100 header fields"}
		}
		f, err := parseField(line)
		if err != nil {
			return nil, err
		}
		r.Fields = append(r.Fields, f)
	}
	if len(rest) != 0 {
		return nil, badRequest("bytes after the end of the head")
	}
	return r, r.framing()
}

// nextLine splits off one CRLF-terminated line.
func nextLine(b []byte) (line, rest []byte, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, badRequest("head does not end with an empty line")
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, nil, badRequest("line ends with a bare LF")
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, badRequest("bare CR in a line")
	}
	return line, b[i+1:], nil
}

// parseRequestLine reads method SP request-target SP HTTP-version.
func (r *Request) parseRequestLine(line []byte) error {
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, version, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || !isToken(method) || len(target) == 0 || !visible(target) {
		return badRequest("malformed request line")
	}
	switch string(version) {
	case "HTTP/1.1":
		r.Minor = 1
	case "HTTP/1.0":
	default:
		if len(version) == 8 && bytes.HasPrefix(version, []byte("HTTP/")) && version[6] == '.' {
			return &headError{http.StatusHTTPVersionNotSupported, "HTTP version " + string(version[5:]) + " not supported"}
		}
		return badRequest("malformed HTTP version")
	}
	r.Method, r.Target = string(method), string(target)
	return nil
}

// parseField reads field-name ":" OWS field-value OWS.
func parseField(line []byte) (Field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Field{}, badRequest("folded header line (obs-fold)")
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok || !isToken(name) {
		return Field{}, badRequest("malformed header field name")
	}
	value = bytes.Trim(value, " \t")
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return Field{}, badRequest("control character in header field %s", name)
		}
	}
	return Field{string(name), string(value)}, nil
}

// framing works out the body's length, the Host and the connection options, and
// refuses the forms that let two parsers disagree on where a request ends.
func (r *Request) framing() error {
	var te []string
	hosts, lengths := 0, 0
	for _, f := range r.Fields {
		switch {
		case strings.EqualFold(f.Name, "Content-Length"):
			lengths++
			n, err := strconv.ParseInt(f.Value, 10, 64)
			if err != nil || n < 0 || f.Value == "" || f.Value[0] < '0' || f.Value[0] > '9' {
				return badRequest("Content-Length %q is not a number", f.Value)
			}
			r.ContentLength = n
		case strings.EqualFold(f.Name, "Transfer-Encoding"):
			te = append(te, splitList(f.Value)...)
		case strings.EqualFold(f.Name, "Host"):
			hosts++
			r.Host = f.Value
		case strings.EqualFold(f.Name, "Connection"):
			r.Hop = append(r.Hop, splitList(strings.ToLower(f.Value))...)
		}
	}
	switch {
	case lengths > 1:
		return badRequest("Content-Length repeated")
	case hosts > 1 || hosts == 0 && r.Minor == 1:
		return badRequest("an HTTP/1.1 request needs exactly one Host")
	case len(te) > 0 && lengths > 0:
		return badRequest("both Content-Length and Transfer-Encoding")
	case len(te) > 0 && r.Minor == 0:
		return badRequest("Transfer-Encoding in an HTTP/1.0 request")
	}
	if err := r.transferCodings(te); err != nil {
		return err
	}
	r.Close = r.Minor == 0 && !r.hopHas("keep-alive") || r.hopHas("close")
	return nil
}

// transferCodings accepts codings that end in one chunked.
func (r *Request) transferCodings(te []string) error {
	if len(te) == 0 {
		return nil
	}
	for i, c := range te {
		chunked := strings.EqualFold(c, "chunked")
		if chunked != (i == len(te)-1) || !isToken([]byte(c)) {
			return badRequest("Transfer-Encoding %q: chunked must be the last coding, once", strings.Join(te, ", "))
		}
	}
	r.Chunked, r.Codings = true, te[:len(te)-1]
	return nil
}

func (r *Request) hopHas(token string) bool {
	for _, t := range r.Hop {
		if t == token {
			return true
		}
	}
	return false
}

// Get returns the first value of the named field, and whether there is one.
func (r *Request) Get(name string) (string, bool) {
	for _, f := range r.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// splitList splits a comma-separated field value, dropping empty elements.
func splitList(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.Trim(e, " \t"); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// visible reports whether b holds only visible ASCII, as a request-target does.
func visible(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
