package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// KerberosOptions are what a [Kerberos] takes besides its config.
type KerberosOptions struct {
	// Replay remembers accepted authenticators. Nil makes a new one; a server
	// gives every Kerberos it builds (one per reload) the same, or a reload
	// would forget the authenticators a replay could reuse.
	Replay *ReplayCache
	// Logger receives keytab reloads and their failures. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Kerberos is a [TicketVerifier] built on gokrb5: it checks tickets against the
// service's keytab (auth.kerberos) with no call to the KDC, keeps a replay cache,
// answers with the mutual-authentication token, and reads the keytab again on
// [Kerberos.Reload] and, under [Kerberos.Watch], when the file changes. Safe for
// concurrent use.
type Kerberos struct {
	keytab    *keytabFile
	services  []string
	realms    []string
	enctypes  []int32
	fullNames bool
	skew      time.Duration
	replay    *ReplayCache
	log       *slog.Logger
	now       func() time.Time
}

// NewKerberos returns a Kerberos for cfg, a validated auth.kerberos block with
// its keytab's path resolved. It reads the keytab: an unreadable one, or one
// without a key of an accepted type for a service name, is an error naming the
// file.
func NewKerberos(cfg configs.Kerberos, opts KerberosOptions) (*Kerberos, error) {
	if cfg.KeytabFile == "" {
		return nil, errors.New("auth.kerberos.keytab_file is empty")
	}
	k := &Kerberos{services: cfg.ServiceNames, realms: cfg.Realms, enctypes: cfg.EnctypeIDs(),
		fullNames: cfg.UserName == configs.KerberosFullNames, skew: cfg.MaxClockSkew,
		replay: opts.Replay, log: opts.Logger, now: opts.Now}
	if k.skew <= 0 {
		k.skew = 5 * time.Minute
	}
	if k.replay == nil {
		k.replay = NewReplayCache(0)
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	var err error
	if k.keytab, err = openKeytabFile(cfg.KeytabFile, cfg.ServiceNames, k.enctypes); err != nil {
		return nil, fmt.Errorf("auth.kerberos.keytab_file: %w", err)
	}
	return k, nil
}

// AcceptSPNEGO implements [TicketVerifier]. The reply, when the client asked for
// mutual authentication, is an SPNEGO NegTokenResp (accept-completed) with the
// AP-REP, for a "Proxy-Authenticate: Negotiate" header on the response.
func (k *Kerberos) AcceptSPNEGO(token []byte, client netip.Addr) KerberosLogin {
	if len(token) > MaxKerberosToken {
		return KerberosLogin{Result: KerberosMalformed, Err: fmt.Errorf("token of %d bytes", len(token))}
	}
	krb5, mech, r, err := decodeNegotiate(token)
	if r != "" {
		return KerberosLogin{Result: r, Err: err}
	}
	a := k.acceptToken(krb5, client)
	if a.login.Result != KerberosOK || !a.mutual {
		return a.login
	}
	rep, err := apRepToken(a.sessionKey, a.auth.CTime, a.auth.Cusec, newSeq())
	if err == nil {
		a.login.Reply, err = negTokenRespToken(mech, rep)
	}
	if err != nil { // cannot happen with a session key that decrypted the ticket
		return KerberosLogin{Result: KerberosIntegrity, Err: fmt.Errorf("mutual authentication token: %w", err)}
	}
	return a.login
}

// AcceptGSS implements [TicketVerifier]. The reply, when the client asked for
// mutual authentication, is the GSS-API AP-REP token; the context's key is the
// client's subkey (or the session key without one), its sequence numbers those
// of the authenticator and the AP-REP.
func (k *Kerberos) AcceptGSS(token []byte, client netip.Addr) KerberosLogin {
	if len(token) > MaxKerberosToken {
		return KerberosLogin{Result: KerberosMalformed, Err: fmt.Errorf("token of %d bytes", len(token))}
	}
	a := k.acceptToken(token, client)
	if a.login.Result != KerberosOK {
		return a.login
	}
	ctx := &gssContext{key: a.sessionKey, recvSeq: uint64(a.auth.SeqNumber), sendSeq: uint64(a.auth.SeqNumber)}
	if a.auth.SubKey.KeyType != 0 {
		ctx.key = a.auth.SubKey
	}
	if a.mutual {
		seq := newSeq()
		rep, err := apRepToken(a.sessionKey, a.auth.CTime, a.auth.Cusec, seq)
		if err != nil {
			return KerberosLogin{Result: KerberosIntegrity, Err: fmt.Errorf("mutual authentication token: %w", err)}
		}
		a.login.Reply, ctx.sendSeq = rep, uint64(seq)
	}
	a.login.Context = ctx
	return a.login
}

// acceptToken checks a Kerberos GSS-API initial context token.
func (k *Kerberos) acceptToken(token []byte, client netip.Addr) accepted {
	der, err := decodeKRB5Token(token)
	if err != nil {
		return accepted{login: KerberosLogin{Result: KerberosMalformed, Err: err}}
	}
	return k.acceptAPReq(der, client)
}
