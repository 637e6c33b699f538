package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// ALPN protocol names the listener offers, in its order of preference.
const (
	ProtoH2     = "h2"
	ProtoHTTP11 = "http/1.1"
)

// cipherSuites are the TLS 1.2 suites the listener accepts: forward secrecy
// (ECDHE) and AEAD only, as Mozilla's "intermediate" profile has them. TLS 1.3
// suites are all of that kind and not configurable.
func cipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// ServerConfig returns the listener's TLS configuration: TLS 1.2 at least,
// modern suites only, the store's certificate as it is at each handshake,
// ALPN offering HTTP/2 and HTTP/1.1, and, when clientCAs is not nil, a client
// certificate required that chains to them.
func ServerConfig(s *Store, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   cipherSuites(),
		GetCertificate: s.GetCertificate,
		NextProtos:     []string{ProtoH2, ProtoHTTP11},
	}
	if clientCAs != nil {
		c.ClientCAs = clientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// LoadClientCAs reads a PEM file of CA certificates; "" is none (nil).
func LoadClientCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls.client_ca_file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Values of the reason label of sockshaper_tls_handshake_failures_total: why a
// TLS handshake with a client failed. Clients are never told which.
const (
	FailTimeout         = "timeout"          // the handshake did not end within timeouts.handshake
	FailClientClosed    = "client_closed"    // the client closed or reset the connection
	FailNotTLS          = "not_tls"          // the first bytes were not TLS (plain HTTP or SOCKS5 to the TLS port)
	FailProtocolVersion = "protocol_version" // the client offered no TLS version the listener accepts
	FailNoSharedCipher  = "no_shared_cipher" // no cipher suite or curve in common
	FailClientRejected  = "client_rejected"  // the client sent an alert: it does not trust the certificate, say
	FailNoClientCert    = "no_client_cert"   // tls.client_ca_file is set and the client sent no certificate
	FailBadClientCert   = "bad_client_cert"  // the client's certificate does not chain to tls.client_ca_file
	FailOther           = "other"            // anything else
)

// FailureReasons lists every reason, for the metrics to pre-initialise.
func FailureReasons() []string {
	return []string{FailTimeout, FailClientClosed, FailNotTLS, FailProtocolVersion, FailNoSharedCipher,
		FailClientRejected, FailNoClientCert, FailBadClientCert, FailOther}
}

// FailureReason names why a server handshake failed, from its error. crypto/tls
// exports types for some failures and only messages for others; a message it
// changes falls back to FailOther, never to a wrong reason.
func FailureReason(err error) string {
	var ne net.Error
	var rh tls.RecordHeaderError
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	msg := err.Error()
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return FailTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EPIPE):
		return FailClientClosed
	case errors.As(err, &rh):
		return FailNotTLS
	case errors.As(err, &verify):
		return FailBadClientCert
	case strings.Contains(msg, "client didn't provide a certificate"):
		return FailNoClientCert
	case strings.Contains(msg, "protocol version"), strings.Contains(msg, "unsupported versions"):
		return FailProtocolVersion
	case strings.Contains(msg, "no cipher suite"), strings.Contains(msg, "no ECDHE curve"), strings.Contains(msg, "no mutually supported"):
		return FailNoSharedCipher
	case errors.As(err, &alert), strings.Contains(msg, "remote error"), strings.Contains(msg, "bad record MAC"):
		// A client that refuses the certificate sends an alert: read as a
		// "remote error" under TLS 1.2, and under TLS 1.3 (where OpenSSL
		// sends it in the clear while the server expects the client's
		// encrypted Finished) as a record that does not decrypt.
		return FailClientRejected
	}
	return FailOther
}
