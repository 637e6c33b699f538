package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestKerberosStateFollowsReloads: a reload with the same auth.kerberos keeps
// the verifier (its keytab read again); a changed block gets a new verifier
// with the same replay cache, and the keytab watch moves to it; a keytab that
// cannot be read fails the reload and leaves the verifier in use alone.
func TestKerberosStateFollowsReloads(t *testing.T) {
	k := kdctest.Start(t)
	dir := t.TempDir()
	keytab := filepath.Join(dir, "proxy.keytab")
	k.Keytab(keytab, kdctest.HTTPService)
	cfg := &configs.Config{Source: "t.yaml"}
	cfg.Auth.Kerberos = configs.Kerberos{KeytabFile: keytab, ServiceNames: []string{kdctest.HTTPService},
		Realms: []string{kdctest.Realm}, UserName: configs.KerberosShortNames, MaxClockSkew: 5 * time.Minute,
		Enctypes: configs.DefaultKerberosEnctypes()}
	ks := newKerberosState(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ks.run(ctx)

	_, v1, err := ks.withTickets(cfg, nil, nil)
	if err != nil || v1 == nil {
		t.Fatalf("first: %v", err)
	}
	ks.use(v1, cfg.Auth.Kerberos)
	_, same, err := ks.withTickets(cfg, nil, nil)
	if err != nil || same != v1 {
		t.Errorf("unchanged block: %p, %v; want the verifier in use %p", same, err, v1)
	}
	changed := *cfg
	changed.Auth.Kerberos.MaxClockSkew = 2 * time.Minute
	_, v2, err := ks.withTickets(&changed, nil, nil)
	if err != nil || v2 == v1 || v2 == nil {
		t.Fatalf("changed block: %p, %v; want a new verifier", v2, err)
	}
	ks.use(v2, changed.Auth.Kerberos)
	// The watch follows v2: a keytab with a new key version replaces the file.
	kvno := v2.Keytab()[0].KVNO
	fresh := filepath.Join(t.TempDir(), "fresh.keytab")
	k.Keytab(fresh, kdctest.HTTPService)
	if err := os.Rename(fresh, keytab); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); v2.Keytab()[0].KVNO == kvno; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not move to the new verifier")
		}
	}
	if v1.Keytab()[0].KVNO != kvno {
		t.Error("the replaced verifier is still watched")
	}
	os.WriteFile(keytab, []byte("not a keytab"), 0o600)
	if _, _, err := ks.withTickets(&changed, nil, nil); err == nil {
		t.Error("a broken keytab: no error")
	}
	if v2.Keytab()[0].KVNO == kvno {
		t.Error("the broken keytab replaced the keys in use")
	}
}
