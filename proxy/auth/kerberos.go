package auth

import (
	"net/netip"
	"time"
)

// KerberosResult is the outcome of one Kerberos login: [KerberosOK] or the
// reason the ticket was refused. The values are short snake_case words, fit for a
// metric label (sockshaper_auth_attempts_total{result}, see
// [KerberosResult.Attempt]) and for logs.
type KerberosResult string

// The results. Every refusal has its own reason, so that an operator can tell a
// client's clock from a stale keytab from an attack.
const (
	// KerberosOK: the ticket and authenticator are good; the identity is set.
	KerberosOK KerberosResult = "ok"
	// KerberosMalformed: not a token that decodes (not SPNEGO or GSS-API
	// Kerberos framing, bad DER, not an AP-REQ, no GSS checksum).
	KerberosMalformed KerberosResult = "malformed"
	// KerberosMechanism: SPNEGO without a Kerberos token (NTLM only, or a
	// continuation the server never asked for).
	KerberosMechanism KerberosResult = "mechanism"
	// KerberosWrongService: a ticket for a service not in service_names.
	KerberosWrongService KerberosResult = "wrong_service"
	// KerberosEnctype: the ticket or its session key is of an encryption type
	// auth.kerberos.enctypes does not allow (RC4, DES3 by default).
	KerberosEnctype KerberosResult = "enctype"
	// KerberosNoKey: the keytab has no key of the ticket's version and type
	// for its service: the KDC's key changed and the keytab was not updated.
	KerberosNoKey KerberosResult = "no_key"
	// KerberosIntegrity: the ticket or authenticator does not decrypt or does
	// not match (forged, corrupted, or the keytab holds another key under the
	// same version).
	KerberosIntegrity KerberosResult = "integrity"
	// KerberosExpired: the ticket ended more than max_clock_skew ago.
	KerberosExpired KerberosResult = "expired"
	// KerberosNotYetValid: the ticket starts more than max_clock_skew from now,
	// or is a postdated ticket marked invalid.
	KerberosNotYetValid KerberosResult = "not_yet_valid"
	// KerberosClockSkew: the authenticator's time is more than max_clock_skew
	// from ours: the client's clock (or ours) is wrong.
	KerberosClockSkew KerberosResult = "clock_skew"
	// KerberosRealm: the client's realm is not in auth.kerberos.realms.
	KerberosRealm KerberosResult = "realm"
	// KerberosReplay: this authenticator was seen before: a captured token
	// sent again.
	KerberosReplay KerberosResult = "replay"
	// KerberosAddress: the ticket is bound to addresses and the client's is not
	// one of them.
	KerberosAddress KerberosResult = "address"
	// KerberosBadName: the client principal cannot be a user name (empty, too
	// long, control characters, or "/" or "@" inside a component).
	KerberosBadName KerberosResult = "bad_name"
	// KerberosBusy: the replay cache is full, so no authenticator can be
	// remembered; refused without blame (not a failed login).
	KerberosBusy KerberosResult = "busy"
	// KerberosUnknownUser: the ticket is good, but the directory (auth.ldap)
	// has no entry for its user, or more than one: a principal the directory
	// does not know (a service's, say) gets no access.
	KerberosUnknownUser KerberosResult = "unknown_user"
)

// KerberosResults lists every result, in the order metrics pre-initialise them.
func KerberosResults() []KerberosResult {
	return []KerberosResult{KerberosOK, KerberosMalformed, KerberosMechanism, KerberosWrongService,
		KerberosEnctype, KerberosNoKey, KerberosIntegrity, KerberosExpired, KerberosNotYetValid,
		KerberosClockSkew, KerberosRealm, KerberosReplay, KerberosAddress, KerberosBadName, KerberosBusy,
		KerberosUnknownUser}
}

// Attempt returns the value of sockshaper_auth_attempts_total's result label
// for a Kerberos login with result r: "kerberos_" and r, so that ticket logins
// and their reasons stand apart from password logins' ok and failed.
func (r KerberosResult) Attempt() string { return "kerberos_" + string(r) }

// Failed reports whether r refuses a client that showed something it should
// not have: every refusal except [KerberosBusy], which is the proxy's own limit.
func (r KerberosResult) Failed() bool { return r != KerberosOK && r != KerberosBusy }

// KerberosLogin is what one ticket resolved to.
type KerberosLogin struct {
	// Result is KerberosOK or why the ticket was refused.
	Result KerberosResult
	// Err says more for the log when Result is a refusal; it never holds key
	// material or the token.
	Err error
	// Identity is set when Result is KerberosOK: User is the principal as
	// auth.kerberos.user_name makes it, ready for the same directory lookup as
	// a password login ([Directory.LookupUser]); Group is "".
	Identity Identity
	// Principal is the client's principal (alice@CAMPUS.EXAMPLE) and Service
	// the ticket's (HTTP/proxy.campus.example@CAMPUS.EXAMPLE), once the ticket
	// decrypted; for logs.
	Principal, Service string
	// Expires is the ticket's end time, when Result is KerberosOK.
	Expires time.Time
	// Reply is the token to send back, when Result is KerberosOK and the
	// client asked for mutual authentication: an SPNEGO NegTokenResp (for a
	// "Negotiate" header) from AcceptSPNEGO, a GSS-API AP-REP token (for an
	// RFC 1961 message) from AcceptGSS; nil otherwise.
	Reply []byte
	// Context protects per-message tokens (RFC 1961's protection-level
	// message). Set by AcceptGSS when Result is KerberosOK; nil otherwise.
	Context SecurityContext
}

// TicketVerifier accepts Kerberos logins: it checks a client's service ticket
// locally, against the service's keys, with no call to the KDC. Implementations
// must be safe for concurrent use and must not block: a check is CPU only
// (decryptions and a replay-cache look-up).
type TicketVerifier interface {
	// AcceptSPNEGO checks the token of a "Negotiate" Proxy-Authorization header
	// (RFC 4559; already base64-decoded): an SPNEGO NegTokenInit carrying a
	// Kerberos AP-REQ, or a bare GSS-API Kerberos token. client is the client's
	// address, for tickets bound to addresses.
	AcceptSPNEGO(token []byte, client netip.Addr) KerberosLogin
	// AcceptGSS checks an initial GSS-API Kerberos context token (RFC 2743
	// framing, RFC 4121 mechanism) as an RFC 1961 client sends it. On success
	// the login's Context verifies and makes the per-message tokens that
	// follow.
	AcceptGSS(token []byte, client netip.Addr) KerberosLogin
}

// SecurityContext is an established GSS-API Kerberos context, for the
// per-message tokens of RFC 4121 (Wrap tokens, integrity only). It is used by
// one connection's goroutine; it is not safe for concurrent use.
type SecurityContext interface {
	// Unwrap checks a Wrap token from the client (RFC 4121 4.2.6.2, without
	// confidentiality) and returns its payload. A token with a bad checksum,
	// out of sequence, sealed (confidentiality), or not a Wrap token is an
	// error.
	Unwrap(token []byte) ([]byte, error)
	// Wrap returns a Wrap token carrying payload to the client, integrity
	// protected, not encrypted.
	Wrap(payload []byte) ([]byte, error)
}
