package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	socks5 "github.com/armon/go-socks5"
)

// methodNoAcceptable is the RFC 1928 method reply meaning "none of yours".
const methodNoAcceptable = 0xFF

var (
	errNoAcceptableMethod = errors.New("client offers no acceptable authentication method")
	errBadVersion         = errors.New("not a SOCKS5 client")
)

// handshake runs greeting, authentication and request under the handshake deadline
// already set on the connection. On error the client has had its reply (where the
// protocol has one) and sess.result says why.
func (sess *session) handshake(br *bufio.Reader) (*socks5.Request, error) {
	if err := sess.negotiate(br); err != nil {
		return nil, err
	}
	return sess.readRequest(br)
}

// negotiate reads the greeting, picks the method and authenticates.
func (sess *session) negotiate(br *bufio.Reader) error {
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
	want := byte(socks5.NoAuth)
	if sess.pol.authn != nil {
		want = socks5.UserPassAuth
	}
	if !offers(methods[:head[1]], want) {
		sess.conn.Write([]byte{socksVersion, methodNoAcceptable})
		sess.result = resultAuthFailed
		return errNoAcceptableMethod
	}
	if sess.pol.authn == nil {
		_, err := socks5.NoAuthAuthenticator{}.Authenticate(br, sess.conn)
		return err
	}
	return sess.login(br)
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
func (sess *session) readRequest(br *bufio.Reader) (*socks5.Request, error) {
	head, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	if head[0] != socksVersion {
		sess.refuse(replyGeneralFailure, resultProtocolError)
		return nil, fmt.Errorf("request version %d: %w", head[0], errBadVersion)
	}
	switch head[1] {
	case socks5.ConnectCommand:
		sess.command = commandConnect
	case socks5.BindCommand:
		sess.command = commandBind
	case socks5.AssociateCommand:
		sess.command = commandUDPAssociate
	default:
		sess.refuse(replyCommandNotSupported, resultCommandRefused)
		return nil, fmt.Errorf("unknown command %#x", head[1])
	}
	if a := head[3]; a != atypIPv4 && a != atypIPv6 && a != atypDomain {
		sess.refuse(replyAddrTypeUnsupported, resultProtocolError)
		return nil, fmt.Errorf("unknown address type %#x", a)
	}
	req, err := socks5.NewRequest(br)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	if req.DestAddr.FQDN == "" && req.DestAddr.IP == nil {
		sess.refuse(replyHostUnreachable, resultProtocolError)
		return nil, errors.New("empty destination name")
	}
	sess.requested = hostPort(req.DestAddr)
	return req, nil
}
