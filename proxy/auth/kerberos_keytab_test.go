package auth

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestKerberosKeyRotation: the KDC's key changes and the keytab gets the new
// version next to the old. Found by Watch (or Reload), the new keys join without
// a moment without keys: tickets under the old version still log in, tickets
// under the new one too. A broken keytab on disk keeps the keys in use.
func TestKerberosKeyRotation(t *testing.T) {
	k := kdctest.Start(t)
	kt := proxyKeytab(t, k)
	var logs syncBuffer
	v := newKerberos(t, kerberosConfig(kt), KerberosOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	old := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.HTTPService)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Watch(ctx, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	k.Keytab(kt, kdctest.HTTPService) // ktadd appends version 3 to the file
	waitFor(t, "the new key version", func() bool { return hasKVNO(v.Keytab(), 3) })
	fresh := serviceTicket(t, k, "bob@"+kdctest.Realm, kdctest.HTTPService)
	if fresh.Ticket.EncPart.KVNO != 3 || old.Ticket.EncPart.KVNO != 2 {
		t.Fatalf("key versions %d and %d; want 2 and 3", old.Ticket.EncPart.KVNO, fresh.Ticket.EncPart.KVNO)
	}
	for name, tk := range map[string]clientTicket{"old key": old, "new key": fresh} {
		if l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback); l.Result != KerberosOK {
			t.Errorf("%s: %+v", name, l)
		}
	}

	if err := os.WriteFile(kt, []byte("\x05\x02garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failure logged", func() bool { return strings.Contains(logs.String(), "keytab reload failed") })
	if _, err := v.Reload(); err == nil || !strings.Contains(err.Error(), kt) {
		t.Errorf("Reload of a broken keytab: %v; want an error naming %s", err, kt)
	}
	if l := v.AcceptSPNEGO(old.Negotiate(t, tokenOpts{}), loopback); l.Result != KerberosOK {
		t.Errorf("after a broken keytab: %+v; the old keys must stay", l)
	}
	if n := strings.Count(logs.String(), "keytab reload failed"); n != 1 {
		t.Errorf("the broken version logged %d times; want once:\n%s", n, &logs)
	}
}

// TestKerberosKDCDown: tickets are checked locally, so logins go on while the
// KDC is stopped.
func TestKerberosKDCDown(t *testing.T) {
	k := kdctest.Start(t)
	v := newKerberos(t, kerberosConfig(proxyKeytab(t, k)), KerberosOptions{})
	tk := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.HTTPService)
	k.Stop()
	if l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback); l.Result != KerberosOK {
		t.Errorf("KDC stopped: %+v", l)
	}
}

// TestNewKerberosErrors: a keytab that cannot serve is an error naming the file.
func TestNewKerberosErrors(t *testing.T) {
	k := kdctest.Start(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other.keytab")
	k.Keytab(other, kdctest.OtherService)
	garbage := filepath.Join(dir, "garbage.keytab")
	os.WriteFile(garbage, bytes.Repeat([]byte{0x05, 0x02, 0xff}, 50), 0o600)
	unreadable := filepath.Join(dir, "unreadable.keytab")
	os.WriteFile(unreadable, nil, 0o000)
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.keytab"), "no such file"},
		{other, "no key of an accepted encryption type for HTTP/proxy.campus.example, rcmd/proxy.campus.example"},
		{garbage, "garbage.keytab"},
	} {
		_, err := NewKerberos(kerberosConfig(tc.file), KerberosOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s: %v; want an error naming the file and containing %q", tc.file, err, tc.want)
		}
	}
	if os.Geteuid() != 0 { // root reads anything
		if _, err := NewKerberos(kerberosConfig(unreadable), KerberosOptions{}); err == nil {
			t.Error("unreadable keytab accepted")
		}
	}
	entries, err := ReadKeytab(other)
	if err != nil || len(entries) != 2 || entries[0] != (KeytabEntry{Principal: kdctest.OtherService + "@" + kdctest.Realm, KVNO: 2,
		Enctype: "aes256-cts-hmac-sha1-96"}) || entries[1].Enctype != "aes128-cts-hmac-sha1-96" {
		t.Errorf("ReadKeytab = %+v, %v", entries, err)
	}
}

func hasKVNO(entries []KeytabEntry, kvno uint32) bool {
	for _, e := range entries {
		if e.KVNO == kvno {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// syncBuffer is a bytes.Buffer a logger and a test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKerberosOtherKeyVersion: a keytab whose key carries another version number
// than the ticket says (an Active Directory read-only DC numbers its own) still
// decrypts the ticket: the other versions are tried after the ticket's own.
func TestKerberosOtherKeyVersion(t *testing.T) {
	k := kdctest.Start(t)
	kt := proxyKeytab(t, k)
	tk := serviceTicket(t, k, "alice@"+kdctest.Realm, kdctest.HTTPService)
	b, err := os.ReadFile(kt)
	if err != nil {
		t.Fatal(err)
	}
	var parsed keytab.Keytab
	if err := parsed.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	for i := range parsed.Entries {
		parsed.Entries[i].KVNO, parsed.Entries[i].KVNO8 = 7, 7
	}
	if b, err = parsed.Marshal(); err != nil {
		t.Fatal(err)
	}
	renumbered := filepath.Join(t.TempDir(), "renumbered.keytab")
	os.WriteFile(renumbered, b, 0o600)
	v := newKerberos(t, kerberosConfig(renumbered), KerberosOptions{})
	if tk.Ticket.EncPart.KVNO != 2 || !hasKVNO(v.Keytab(), 7) || hasKVNO(v.Keytab(), 2) {
		t.Fatalf("ticket version %d, keytab %+v", tk.Ticket.EncPart.KVNO, v.Keytab())
	}
	if l := v.AcceptSPNEGO(tk.Negotiate(t, tokenOpts{}), loopback); l.Result != KerberosOK {
		t.Errorf("key under another version: %+v", l)
	}
}
