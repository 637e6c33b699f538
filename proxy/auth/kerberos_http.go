package auth

import (
	"encoding/base64"
	"strings"
)

// negotiateScheme is the RFC 4559 scheme name, compared without case.
const negotiateScheme = "Negotiate"

// NegotiateToken returns the token of a "Negotiate <base64>" header value
// (Proxy-Authorization), and false when the value is of another scheme, has no
// token, is not base64, or decodes to more than [MaxKerberosToken] bytes.
func NegotiateToken(value string) ([]byte, bool) {
	scheme, b64, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(scheme, negotiateScheme) {
		return nil, false
	}
	b64 = strings.TrimSpace(b64)
	// Go's decoder skips line breaks inside; a header's token has none.
	if b64 == "" || strings.ContainsAny(b64, " \t\r\n") || base64.StdEncoding.DecodedLen(len(b64)) > MaxKerberosToken+2 {
		return nil, false
	}
	token, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(token) == 0 || len(token) > MaxKerberosToken {
		return nil, false
	}
	return token, true
}

// NegotiateChallenge returns the Proxy-Authenticate value that carries reply (a
// login's Reply) back to the client, or the bare "Negotiate" of a 407 when
// reply is nil.
func NegotiateChallenge(reply []byte) string {
	if reply == nil {
		return negotiateScheme
	}
	return negotiateScheme + " " + base64.StdEncoding.EncodeToString(reply)
}
