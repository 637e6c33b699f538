package socks5

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	socks5 "github.com/armon/go-socks5"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// methodNoAcceptable is the RFC 1928 method reply meaning "none of yours".
const methodNoAcceptable = 0xFF

// reasonTLSRequired is the close reason of a login refused on a plaintext
// listener under auth.require_tls.
const reasonTLSRequired = "tls_required"

var (
	errTLSRequired        = errors.New("auth.require_tls: no password login on a plaintext listener; the client must use tls.listen")
	errNoAcceptableMethod = errors.New("client offers no acceptable authentication method")
	errBadVersion         = errors.New("not a SOCKS5 client")
)

// handshake runs greeting, authentication and request under the handshake deadline
// already set on the connection, and returns the request, recorded in the
// session. On error the client has had its reply (where the protocol has one)
// and the session's result says why.
func handshake(s *tunnel.Session, br *bufio.Reader) (tunnel.Request, error) {
	if err := negotiate(s, br); err != nil {
		return tunnel.Request{}, err
	}
	req, err := readRequest(s, br)
	if err == nil {
		s.Read(req)
	}
	return req, err
}

// negotiate reads the greeting, picks the method and authenticates: GSS-API
// (a Kerberos ticket, RFC 1961) when Kerberos is on and the client offers it,
// whatever else it offers; else username/password (RFC 1929) where passwords
// are checked and may be sent; no authentication when none is configured.
func negotiate(s *tunnel.Session, br *bufio.Reader) error {
	var head [2]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if head[0] != socksVersion {
		return fmt.Errorf("greeting version %d: %w", head[0], errBadVersion)
	}
	var methods [255]byte
	if _, err := io.ReadFull(br, methods[:head[1]]); err != nil {
		return fmt.Errorf("read greeting methods: %w", err)
	}
	conn := s.Conn()
	nc := conn.Net()
	switch method, reason := chooseMethod(conn, methods[:head[1]]); method {
	case socks5.NoAuth:
		_, err := socks5.NoAuthAuthenticator{}.Authenticate(br, nc)
		return err
	case MethodGSSAPI:
		return loginGSSAPI(s, br)
	case socks5.UserPassAuth:
		return login(s, br)
	default:
		nc.Write([]byte{socksVersion, methodNoAcceptable})
		s.Refuse(metrics.ResultAuthFailed, reason)
		if reason == reasonTLSRequired {
			return errTLSRequired
		}
		return errNoAcceptableMethod
	}
}

// chooseMethod picks the method for a client that offers methods, or
// methodNoAcceptable and the close reason.
func chooseMethod(conn *tunnel.Conn, methods []byte) (method byte, reason string) {
	authn := conn.Policy().Authn
	switch {
	case authn == nil && offers(methods, socks5.NoAuth):
		return socks5.NoAuth, ""
	case authn == nil:
		return methodNoAcceptable, ""
	case authn.Tickets() && offers(methods, MethodGSSAPI):
		return MethodGSSAPI, ""
	case authn.Passwords() && !conn.Secure() && !conn.Policy().Config.PasswordsInClear():
		// auth.require_tls: no password may come over this connection, so
		// no method that would carry one is offered.
		return methodNoAcceptable, reasonTLSRequired
	case authn.Passwords() && offers(methods, socks5.UserPassAuth):
		return socks5.UserPassAuth, ""
	}
	return methodNoAcceptable, ""
}

func offers(methods []byte, want byte) bool {
	for _, m := range methods {
		if m == want {
			return true
		}
	}
	return false
}

// readRequest checks the request header itself, so that an unknown command or
// address type gets its own reply code, then lets armon/go-socks5 parse it.
func readRequest(s *tunnel.Session, br *bufio.Reader) (tunnel.Request, error) {
	head, err := br.Peek(4)
	if err != nil {
		return tunnel.Request{}, fmt.Errorf("read request: %w", err)
	}
	if head[0] != socksVersion {
		reply(s, replyGeneralFailure, metrics.ResultProtocolError)
		return tunnel.Request{}, fmt.Errorf("request version %d: %w", head[0], errBadVersion)
	}
	var command string
	switch head[1] {
	case socks5.ConnectCommand:
		command = metrics.CommandConnect
	case socks5.BindCommand:
		command = metrics.CommandBind
	case socks5.AssociateCommand:
		command = metrics.CommandUDPAssociate
	default:
		reply(s, replyCommandNotSupported, metrics.ResultCommandRefused)
		return tunnel.Request{}, fmt.Errorf("unknown command %#x", head[1])
	}
	if a := head[3]; a != atypIPv4 && a != atypIPv6 && a != atypDomain {
		s.Read(tunnel.Request{Command: command})
		reply(s, replyAddrTypeUnsupported, metrics.ResultProtocolError)
		return tunnel.Request{}, fmt.Errorf("unknown address type %#x", a)
	}
	req, err := socks5.NewRequest(br)
	if err != nil {
		s.Read(tunnel.Request{Command: command})
		return tunnel.Request{}, fmt.Errorf("read request: %w", err)
	}
	if req.DestAddr.FQDN == "" && req.DestAddr.IP == nil {
		s.Read(tunnel.Request{Command: command})
		reply(s, replyHostUnreachable, metrics.ResultProtocolError)
		return tunnel.Request{}, errors.New("empty destination name")
	}
	return request(command, req.DestAddr), nil
}
