package proxy

import (
	"bufio"

	"github.com/sockshaper/sockshaper/proxy/h2proxy"
	"github.com/sockshaper/sockshaper/proxy/httpproxy"
	"github.com/sockshaper/sockshaper/proxy/socks5"
	"github.com/sockshaper/sockshaper/proxy/tlscert"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// A Front serves the connections its protocol was chosen for: it reads its
// client's requests through br (which holds the bytes the choice looked at) and
// hands each to the core, and writes the core's outcomes as its protocol's
// replies. The connection is the caller's to end when Serve returns, unless a
// relay took it over (tunnel.Conn.Detached). socks5.Front and httpproxy.Front
// implement it; a new protocol is one more implementation and one more row in
// a listener's table.
type Front interface {
	Serve(conn *tunnel.Conn, br *bufio.Reader)
}

// frontTable chooses a connection's front by its first byte: SOCKS5 starts
// with its version, 0x05; HTTP with a method, a letter. A byte no front claims
// is an unknown protocol (SOCKS4, TLS to a plain port, a scan).
type frontTable [256]Front

// claim gives front the first bytes in firsts.
func (t *frontTable) claim(front Front, firsts ...byte) {
	for _, b := range firsts {
		t[b] = front
	}
}

// letters are the first bytes of an HTTP request: its method's first letter.
func letters() []byte {
	var b []byte
	for c := byte('A'); c <= 'Z'; c++ {
		b = append(b, c, c+'a'-'A')
	}
	return b
}

// socksAndHTTP is the table of the listen address: SOCKS5 and HTTP proxy
// clients on one port.
func socksAndHTTP() *frontTable {
	t := httpOnly()
	t.claim(socks5.Front{}, socks5.Version)
	return t
}

// httpOnly is the table of http.listen: HTTP proxy clients only; a SOCKS5
// client is refused there.
func httpOnly() *frontTable {
	t := &frontTable{}
	t.claim(httpproxy.Front{}, letters()...)
	return t
}

// listenerKind is how the connections of one kind of listener are served: the
// table of fronts their first byte chooses from, and, on the HTTPS listener,
// TLS first and the fronts an ALPN protocol chooses by itself.
type listenerKind struct {
	fronts *frontTable
	tls    bool
	alpn   map[string]Front // by negotiated protocol; the rest go to fronts
}

// listenerFronts are the server's kinds of listener.
type listenerFronts struct {
	plain *listenerKind // listen: SOCKS5 and HTTP
	http  *listenerKind // http.listen: HTTP only
	tls   *listenerKind // tls.listen: TLS, then HTTP/2 by ALPN, else SOCKS5 and HTTP
}

// newListenerFronts returns the server's kinds of listener with their fronts.
func newListenerFronts() listenerFronts {
	return listenerFronts{
		plain: &listenerKind{fronts: socksAndHTTP()},
		http:  &listenerKind{fronts: httpOnly()},
		tls:   &listenerKind{fronts: socksAndHTTP(), tls: true, alpn: map[string]Front{tlscert.ProtoH2: h2proxy.Front{}}},
	}
}
