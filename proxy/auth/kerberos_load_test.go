package auth

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestKerberosCampusLoad: many sessions of one user at once (a browser opening
// its connections, each with a fresh authenticator) all log in; one captured
// token sent by many attackers at once logs in exactly once.
func TestKerberosCampusLoad(t *testing.T) {
	k := kdctest.Start(t)
	v := newKerberos(t, kerberosConfig(proxyKeytab(t, k)), KerberosOptions{})
	tk := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.HTTPService)
	const sessions = 200
	tokens := make([][]byte, sessions)
	for i := range tokens {
		tokens[i] = tk.Negotiate(t, tokenOpts{Mutual: i%2 == 0})
	}
	results := make([]KerberosResult, sessions)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() { results[i] = v.AcceptSPNEGO(tokens[i], loopback).Result })
	}
	wg.Wait()
	for i, r := range results {
		if r != KerberosOK {
			t.Fatalf("session %d: %s", i, r)
		}
	}

	captured := tk.Negotiate(t, tokenOpts{})
	counts := map[KerberosResult]int{}
	var mu sync.Mutex
	for range 64 {
		wg.Go(func() {
			r := v.AcceptSPNEGO(captured, netip.MustParseAddr("192.0.2.66")).Result
			mu.Lock()
			counts[r]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[KerberosOK] != 1 || counts[KerberosReplay] != 63 {
		t.Errorf("one token sent 64 times at once: %v; want 1 ok and 63 replays", counts)
	}
	if n := v.replay.Len(); n != sessions+1 {
		t.Errorf("replay cache holds %d; want %d", n, sessions+1)
	}
}

// TestKerberosReplayCacheFull: a full replay cache refuses (busy, not a failed
// login) rather than forget an authenticator.
func TestKerberosReplayCacheFull(t *testing.T) {
	k := kdctest.Start(t)
	v := newKerberos(t, kerberosConfig(proxyKeytab(t, k)), KerberosOptions{Replay: NewReplayCache(1)})
	tk := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.HTTPService)
	if l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback); l.Result != KerberosOK {
		t.Fatal(l)
	}
	l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback)
	if l.Result != KerberosBusy || l.Result.Failed() {
		t.Errorf("full cache: %+v; want busy, not failed", l)
	}
}

// TestKerberosUserNames: the user name a principal becomes, and the principals
// refused as bad_name because their name could pass for another's ("a/b" as one
// component reads as two) or cannot be a user name. (MIT's KDC issues no
// service ticket to a principal named a\/b, so these are unit cases.)
func TestKerberosUserNames(t *testing.T) {
	short, full := &Kerberos{}, &Kerberos{fullNames: true}
	name := func(parts ...string) types.PrincipalName { return types.PrincipalName{NameType: 1, NameString: parts} }
	for _, tc := range []struct {
		v      *Kerberos
		cname  types.PrincipalName
		want   string
		refuse bool
	}{
		{short, name("alice"), "alice", false},
		{full, name("alice"), "alice@CAMPUS.EXAMPLE", false},
		{short, name("alice", "admin"), "alice/admin", false},
		{short, name("a/b"), "", true},
		{short, name("a@OTHER.EXAMPLE"), "", true},
		{short, name(""), "", true},
		{short, name(), "", true},
		{short, name("al\nice"), "", true},
		{short, name(`al\ice`), `al\ice`, false},
		{short, name("al\x00ice"), "", true},
		{short, name("\xff"), "", true},
		{short, name(strings.Repeat("a", 256)), "", true},
	} {
		got, err := tc.v.userName(tc.cname, "CAMPUS.EXAMPLE")
		if (err != nil) != tc.refuse || got != tc.want {
			t.Errorf("%q: %q, %v; want %q (refused %v)", tc.cname.NameString, got, err, tc.want, tc.refuse)
		}
	}
}

// TestKerberosAddresses: a ticket bound to addresses is taken from those only.
// (MIT's KDC on loopback gives no addressed tickets: it checks the TGT's
// addresses, the host's, against 127.0.0.1; so the ticket's decrypted part is
// made here.)
func TestKerberosAddresses(t *testing.T) {
	v := &Kerberos{skew: time.Minute, enctypes: []int32{etypeID.AES256_CTS_HMAC_SHA1_96}, now: time.Now}
	enc := &messages.EncTicketPart{AuthTime: time.Now(), EndTime: time.Now().Add(time.Hour),
		Key:   types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96},
		CAddr: []types.HostAddress{types.HostAddressFromNetIP(net.ParseIP("10.1.2.3")), types.HostAddressFromNetIP(net.ParseIP("2001:db8::7"))}}
	for addr, want := range map[string]KerberosResult{"10.1.2.3": KerberosOK, "::ffff:10.1.2.3": KerberosOK,
		"2001:db8::7": KerberosOK, "10.1.2.4": KerberosAddress, "127.0.0.1": KerberosAddress} {
		if r, err := v.checkTicket(enc, netip.MustParseAddr(addr)); r != want {
			t.Errorf("from %s: %s (%v); want %s", addr, r, err, want)
		}
	}
	enc.CAddr = nil
	if r, _ := v.checkTicket(enc, netip.MustParseAddr("192.0.2.1")); r != KerberosOK {
		t.Errorf("ticket without addresses: %s", r)
	}
}

// TestKerberosSecurityContext: after AcceptGSS, the client's per-message tokens
// (RFC 4121 Wrap, integrity only, under its subkey) unwrap in sequence; tampered,
// replayed or sealed ones do not; the proxy's tokens verify under the acceptor's
// key usage with the sequence number of its AP-REP.
func TestKerberosSecurityContext(t *testing.T) {
	k := kdctest.Start(t)
	v := newKerberos(t, kerberosConfig(proxyKeytab(t, k)), KerberosOptions{})
	tk := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.SOCKSService)
	tok, a := tk.Token(t, tokenOpts{Mutual: true})
	l := v.AcceptGSS(tok, loopback)
	if l.Result != KerberosOK || l.Context == nil || l.Reply == nil {
		t.Fatalf("AcceptGSS: %+v", l)
	}
	rep := checkAPRep(t, l.Reply, tk.Key, a)

	wrap := func(payload []byte, seq uint64, flags byte) []byte {
		wt := gssapi.WrapToken{Flags: flags, EC: 12, SndSeqNum: seq, Payload: payload}
		if err := wt.SetCheckSum(a.SubKey, keyusage.GSSAPI_INITIATOR_SEAL); err != nil {
			t.Fatal(err)
		}
		b, _ := wt.Marshal()
		return b
	}
	seq := uint64(a.SeqNumber)
	first := wrap([]byte{0}, seq, 0)
	for _, tc := range []struct {
		name  string
		token []byte
		ok    bool
	}{
		{"tampered", flipLast(first), false},
		{"sealed", wrap([]byte{0}, seq, wrapSealed), false},
		{"out of sequence", wrap([]byte{0}, seq+1, 0), false},
		{"first", first, true},
		{"replayed", first, false},
		{"second", wrap([]byte{1, 2}, seq+1, 0), true},
		{"short", []byte{5, 4, 0}, false},
	} {
		if _, err := l.Context.Unwrap(tc.token); (err == nil) != tc.ok {
			t.Errorf("%s: Unwrap error %v; want ok %v", tc.name, err, tc.ok)
		}
	}
	out, err := l.Context.Wrap([]byte{0})
	if err != nil {
		t.Fatal(err)
	}
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(out, true); err != nil {
		t.Fatal(err)
	}
	if ok, err := wt.Verify(a.SubKey, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok || wt.SndSeqNum != uint64(rep.SequenceNumber) {
		t.Errorf("the proxy's Wrap token: verify %v %v, seq %d; want the AP-REP's %d", ok, err, wt.SndSeqNum, rep.SequenceNumber)
	}
}
