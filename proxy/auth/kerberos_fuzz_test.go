package auth

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// The fuzz targets run without a KDC: the service key comes from a password
// (keytab.AddEntry), and a valid ticket is made with it (messages.NewTicket), so
// that the seeds reach every step of the check.

// fuzzKerberos returns a verifier whose keytab holds the HTTP service's key
// derived from a fixed password, and a valid Negotiate token for alice.
func fuzzKerberos(f *testing.F) (*Kerberos, []byte) {
	v, c := offlineKerberos(f)
	good := c.Negotiate(f, kdctest.TokenOptions{Mutual: true})
	probe := *v
	probe.replay = NewReplayCache(0)
	if l := probe.AcceptSPNEGO(good, loopback); l.Result != KerberosOK {
		f.Fatalf("the seed token is refused: %+v", l)
	}
	return v, good
}

// offlineKerberos returns such a verifier and a ticket for alice made with the
// service key, without a KDC.
func offlineKerberos(f testing.TB) (*Kerberos, kdctest.Ticket) {
	kt := keytab.New()
	if err := kt.AddEntry(kdctest.HTTPService, kdctest.Realm, "fuzz-service-pw", time.Now(), 2, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		f.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "fuzz.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		f.Fatal(err)
	}
	cfg := kerberosConfig(path)
	cfg.ServiceNames = cfg.ServiceNames[:1]
	v, err := NewKerberos(cfg, KerberosOptions{})
	if err != nil {
		f.Fatal(err)
	}
	sname, _ := types.ParseSPNString(kdctest.HTTPService)
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice")
	now := time.Now().UTC()
	tkt, key, err := messages.NewTicket(cname, kdctest.Realm, sname, kdctest.Realm, types.NewKrbFlags(), kt,
		etypeID.AES256_CTS_HMAC_SHA1_96, 2, now, now, now.Add(time.Hour), now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	return v, kdctest.Ticket{Ticket: tkt, Key: key, CName: cname, CRealm: kdctest.Realm, EndTime: now.Add(time.Hour)}
}

// FuzzAcceptSPNEGO feeds anything to the whole check (SPNEGO NegTokenInit and
// NegTokenResp decoding, GSS-API framing, the AP-REQ, the ticket and the
// authenticator): it never panics, always gives a known result, and logs alice
// in at most once, since no mutation can make a new authenticator without the
// session key and the first one is then in the replay cache.
func FuzzAcceptSPNEGO(f *testing.F) {
	v, good := fuzzKerberos(f)
	f.Add(good)
	f.Add(good[:len(good)-7])
	_, inner, _ := decodeInitialToken(good)
	f.Add(inner)
	f.Add([]byte{0xa1, 0x03, 0x30, 0x01, 0x00})
	f.Add([]byte{0x60, 0x82, 0xff, 0xff})
	f.Add([]byte("YIIC"))
	oks := 0
	f.Fuzz(func(t *testing.T, token []byte) {
		l := v.AcceptSPNEGO(token, loopback)
		if !slices.Contains(KerberosResults(), l.Result) {
			t.Fatalf("unknown result %q", l.Result)
		}
		if l.Result != KerberosOK {
			if l.Err == nil || l.Identity != (Identity{}) || l.Reply != nil {
				t.Fatalf("refusal %+v", l)
			}
			return
		}
		if oks++; oks > 1 || l.Identity.User != "alice" {
			t.Fatalf("login %d: %+v", oks, l)
		}
	})
}

// FuzzDecodeNegotiate: the Negotiate decoder returns a Kerberos token (which is
// part of its input) or a malformed/mechanism refusal, never a panic.
func FuzzDecodeNegotiate(f *testing.F) {
	_, good := fuzzKerberos(f)
	f.Add(good)
	f.Add(kdctest.SPNEGOInit(f, []byte("NTLMSSP\x00"), asn1OID(1, 3, 6, 1, 4, 1, 311, 2, 2, 10)))
	f.Add(kdctest.SPNEGOInit(f, nil, oidKRB5))
	f.Fuzz(func(t *testing.T, b []byte) {
		krb5, mech, r, err := decodeNegotiate(b)
		switch r {
		case "":
			if err != nil || len(krb5) == 0 || !bytes.Contains(b, krb5) || !mech.Equal(oidKRB5) && !mech.Equal(oidMSKRB5) {
				t.Fatalf("accepted %x: token %x mech %v err %v", b, krb5, mech, err)
			}
		case KerberosMalformed, KerberosMechanism:
			if err == nil || krb5 != nil {
				t.Fatalf("refused %s without an error, or with a token", r)
			}
		default:
			t.Fatalf("result %q", r)
		}
	})
}

// FuzzUnwrap: per-message tokens (the RFC 1961 protection-level message) unwrap
// only when their checksum is the client's, whatever the rotation, flags or
// lengths say.
func FuzzUnwrap(f *testing.F) {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{7}, 32)}
	wt := gssapi.WrapToken{EC: 12, SndSeqNum: 42, Payload: []byte{0}}
	if err := wt.SetCheckSum(key, keyusage.GSSAPI_INITIATOR_SEAL); err != nil {
		f.Fatal(err)
	}
	good, _ := wt.Marshal()
	f.Add(good)
	rotated := slices.Clone(good)
	rotated[7] = 5 // RRC 5: the data rotated right by 5
	data := rotated[16:]
	rotated = append(rotated[:16], append(slices.Clone(data[len(data)-5:]), data[:len(data)-5]...)...)
	f.Add(rotated)
	f.Add(good[:16])
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &gssContext{key: key, recvSeq: 42}
		p, err := c.Unwrap(b)
		if err == nil && (!bytes.Equal(p, []byte{0}) || c.recvSeq != 43) {
			t.Fatalf("unwrapped %x from %x (seq now %d)", p, b, c.recvSeq)
		}
		if err != nil && c.recvSeq != 42 {
			t.Fatal("a refused token moved the sequence")
		}
	})
}

// FuzzParseKeySet: a broken keytab file is an error, never a panic, and what
// parses holds only keys with a principal.
func FuzzParseKeySet(f *testing.F) {
	kt := keytab.New()
	kt.AddEntry(kdctest.HTTPService, kdctest.Realm, "pw", time.Unix(1e9, 0), 3, etypeID.AES128_CTS_HMAC_SHA1_96)
	b, _ := kt.Marshal()
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Add([]byte{5, 2, 0xff, 0xff, 0xff, 0xf0})
	f.Add([]byte{5, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := parseKeySet(b)
		if err != nil {
			return
		}
		if len(ks.keys) == 0 || len(ks.keys) != len(ks.entries) {
			t.Fatalf("%d keys, %d entries", len(ks.keys), len(ks.entries))
		}
		for _, k := range ks.keys {
			if k.service == "" || len(k.key.KeyValue) == 0 {
				t.Fatalf("key %+v", k)
			}
		}
	})
}
