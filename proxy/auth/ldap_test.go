package auth

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/slapdtest"
	"github.com/sockshaper/sockshaper/metrics"
)

// ldapConfig is an auth.ldap block for s over StartTLS with the test CA; staff
// is matched before students.
func ldapConfig(t *testing.T, s *slapdtest.Server) configs.LDAP {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "ldap.secret")
	if err := os.WriteFile(secret, []byte(slapdtest.ServicePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return configs.LDAP{
		URL: s.URL, StartTLS: true, CAFile: s.CAFile,
		BindDN: slapdtest.ServiceDN, BindPasswordFile: secret,
		BaseDN: slapdtest.PeopleDN, UserFilter: "(uid={user})",
		Groups: configs.LDAPGroups{
			{DN: slapdtest.StaffGroup, Group: "staff"},
			{DN: slapdtest.StudentsGroup, Group: "students"},
		},
		Timeout: 2 * time.Second,
	}
}

func newTestDirectory(t *testing.T, cfg configs.LDAP, opts DirectoryOptions) *Directory {
	t.Helper()
	d, err := NewDirectory(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestDirectoryVerify logs in against a real slapd: right, wrong and empty
// passwords, unknown users, names that would change an unescaped filter, and the
// group each user's login chooses.
func TestDirectoryVerify(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	rec := newCountingRecorder()
	d := newTestDirectory(t, ldapConfig(t, s), DirectoryOptions{Recorder: rec})
	pw := slapdtest.Password
	for _, tc := range []struct {
		user, password string
		want           Verdict
		id             Identity
	}{
		{"alice", pw("alice"), OK, Identity{"alice", "staff"}},
		{"bob", pw("bob"), OK, Identity{"bob", "students"}},
		{"carol", pw("carol"), OK, Identity{"carol", "staff"}}, // staff is configured first
		{"dave", pw("dave"), OK, Identity{"dave", ""}},         // in no group: the default group
		{"ALICE", pw("alice"), OK, Identity{"alice", "staff"}}, // one user, one name
		{" alice", pw("alice"), OK, Identity{"alice", "staff"}},
		{slapdtest.OddUser, pw(slapdtest.OddUser), OK, Identity{slapdtest.OddUser, "students"}},
		{"alice", pw("bob"), Rejected, Identity{}},
		{"alice", "", Rejected, Identity{}},
		{"", pw("alice"), Rejected, Identity{}},
		{"mallory", pw("mallory"), Rejected, Identity{}},
		// Unescaped, each of these would match alice (or everyone) and bind as
		// her with her password.
		{"*", pw("alice"), Rejected, Identity{}},
		{"al*", pw("alice"), Rejected, Identity{}},
		{"a*)(uid=*", pw("alice"), Rejected, Identity{}},
		{"alice)(|(uid=*", pw("alice"), Rejected, Identity{}},
		{`\`, pw("alice"), Rejected, Identity{}},
		{"alice\x00", pw("alice"), Rejected, Identity{}},
		{"odd(*)*", pw(slapdtest.OddUser), Rejected, Identity{}},
	} {
		id, v, err := d.Verify(context.Background(), tc.user, tc.password)
		if err != nil || v != tc.want || id != tc.id {
			t.Errorf("Verify(%q, %q) = %+v, %v, %v; want %+v, %v", tc.user, tc.password, id, v, err, tc.id, tc.want)
		}
	}
	searches := rec.get(rec.requests, OpSearch)
	d.Verify(context.Background(), "alice", "")
	if got := rec.get(rec.requests, OpSearch); got != searches {
		t.Errorf("an empty password asked the directory (%d searches, had %d)", got, searches)
	}
	checkPoolBoundAsService(t, d)
}

// checkPoolBoundAsService asks the directory who each idle pooled connection is
// bound as: never a user.
func checkPoolBoundAsService(t *testing.T, d *Directory) {
	t.Helper()
	d.pool.mu.Lock()
	idle := slices.Clone(d.pool.idle)
	d.pool.mu.Unlock()
	if len(idle) == 0 {
		t.Fatal("no idle pooled connection to check")
	}
	for _, ic := range idle {
		res, err := ic.c.WhoAmI(nil)
		if err != nil || res.AuthzID != "dn:"+slapdtest.ServiceDN {
			t.Errorf("pooled connection bound as %q (%v); want the service account", res.AuthzID, err)
		}
	}
}

func TestDirectoryGroupOrderAndMemberSearch(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{NoMemberOf: true})
	cfg := ldapConfig(t, s)
	slices.Reverse(cfg.Groups) // students first now
	d := newTestDirectory(t, cfg, DirectoryOptions{})
	for user, want := range map[string]string{"alice": "staff", "bob": "students", "carol": "students", "dave": ""} {
		r, err := d.Login(context.Background(), user, slapdtest.Password(user))
		if err != nil || !r.OK || r.Group != want || r.GroupsFrom != "member search" {
			t.Errorf("%s: %+v, %v; want group %q from a member search", user, r, err, want)
		}
	}
	r, _ := d.Login(context.Background(), "carol", slapdtest.Password("carol"))
	if len(r.Groups) != 2 || r.GroupDN != slapdtest.StudentsGroup || r.DN != slapdtest.UserDN("carol") {
		t.Errorf("carol: %+v; want both groups, students chosen", r)
	}
}

// TestDirectoryTLS logs in over ldaps:// and StartTLS with the test CA, and fails
// with a TLS error, without a login, against another CA.
func TestDirectoryTLS(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	other, err := slapdtest.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherFile, other.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		url      string
		startTLS bool
		ca       string
		want     Verdict
	}{
		{"ldaps", s.LDAPSURL, false, s.CAFile, OK},
		{"StartTLS", s.URL, true, s.CAFile, OK},
		{"ldaps wrong CA", s.LDAPSURL, false, otherFile, Unavailable},
		{"StartTLS wrong CA", s.URL, true, otherFile, Unavailable},
		{"ldaps system roots", s.LDAPSURL, false, "", Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ldapConfig(t, s)
			cfg.URL, cfg.StartTLS, cfg.CAFile = tc.url, tc.startTLS, tc.ca
			rec := newCountingRecorder()
			d := newTestDirectory(t, cfg, DirectoryOptions{Recorder: rec})
			_, v, err := d.Verify(context.Background(), "alice", slapdtest.Password("alice"))
			if v != tc.want {
				t.Fatalf("Verify = %v, %v; want %v", v, err, tc.want)
			}
			if tc.want == OK {
				return
			}
			if ErrorKind(err) != KindTLS || !strings.Contains(err.Error(), "certificate") || rec.get(rec.errors, KindTLS) != 1 {
				t.Errorf("error %v (kind %q), tls errors counted %d; want one TLS error about the certificate",
					err, ErrorKind(err), rec.get(rec.errors, KindTLS))
			}
		})
	}
}

// TestDirectoryConcurrentLogins runs 300 logins at once through an Authenticator:
// every answer right, the Gate's workers raised to the connections, and never more
// connections open than the bound.
func TestDirectoryConcurrentLogins(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	rec := newCountingRecorder()
	d := newTestDirectory(t, ldapConfig(t, s), DirectoryOptions{Recorder: rec, Conns: 4})
	g := NewGate(GateOptions{Throttle: configs.AuthThrottle{FailuresPerUser: 1000, FailuresPerAddress: 1000, Window: time.Minute}})
	t.Cleanup(g.Close)
	a := g.Authenticator(d, 0) // no cache: every login asks the directory
	if g.Workers() != 4 {
		t.Errorf("Gate workers with a directory of 4 connections: %d", g.Workers())
	}
	users := []string{"alice", "bob", "carol", "dave", "mallory"}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, password := users[i%len(users)], slapdtest.Password(users[i%len(users)])
			if i%3 == 0 {
				password = "wrong"
			}
			want := ResultOK
			if i%3 == 0 || user == "mallory" {
				want = ResultFailed
			}
			if out := a.Login(context.Background(), client, user, password); out.Result != want {
				t.Errorf("login %d (%s): %v %v; want %s", i, user, out.Result, out.Err, want)
			}
		}()
	}
	wg.Wait()
	if rec.maxOpen > 4 || rec.maxOpen < 1 {
		t.Errorf("%d connections open at once; want 1 to 4", rec.maxOpen)
	}
	checkPoolBoundAsService(t, d)
	g.Authenticator(flooredVerifier{&stubVerifier{}, 0}, 0)
	if g.Workers() != max(1, g.workers) {
		t.Errorf("workers after a reload to a verifier without tuning: %d, want the Gate's %d", g.Workers(), g.workers)
	}
}

// TestDirectoryFailureFloor: an unknown user (a search alone) is padded to the
// time of a search and a bind.
func TestDirectoryFailureFloor(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	d := newTestDirectory(t, ldapConfig(t, s), DirectoryOptions{})
	for range 5 {
		d.Verify(context.Background(), "bob", "wrong")
	}
	floor := d.FailureFloor()
	if floor <= 0 {
		t.Fatalf("floor %v after five binds", floor)
	}
	g := NewGate(GateOptions{Throttle: testThrottleSettings()})
	t.Cleanup(g.Close)
	a := g.Authenticator(d, 0)
	start := time.Now()
	if out := a.Login(context.Background(), client, "nobody-here", "x"); out.Result != ResultFailed {
		t.Fatalf("unknown user: %v", out.Result)
	}
	if took := time.Since(start); took < floor*9/10 {
		t.Errorf("unknown user answered in %v, under the floor %v", took, floor)
	}
}

func TestDirectoryLabelsMatchMetrics(t *testing.T) {
	if !slices.Equal(DirectoryOperations(), metrics.LDAPOperations()) || !slices.Equal(DirectoryErrorKinds(), metrics.LDAPErrorKinds()) {
		t.Errorf("auth %v %v, metrics %v %v", DirectoryOperations(), DirectoryErrorKinds(), metrics.LDAPOperations(), metrics.LDAPErrorKinds())
	}
}
