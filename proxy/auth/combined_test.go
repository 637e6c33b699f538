package auth

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// TestCombined: the users file's users are checked against the file only (even
// when the directory knows them too), everyone else against the directory; the
// file keeps working while the directory is down.
func TestCombined(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	d := newTestDirectory(t, ldapConfig(t, s), DirectoryOptions{Conns: 6})
	var lines strings.Builder
	for _, u := range []string{"alice", "svc"} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u+"-file-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines.WriteString(u + ":" + string(hash) + "\n")
	}
	users, err := ParseUsersFile(strings.NewReader(lines.String()), "test.htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	c := NewCombined(users, d)
	check := func(user, password string, want Verdict, wantID Identity) {
		t.Helper()
		id, v, err := c.Verify(context.Background(), user, password)
		if v != want || id != wantID {
			t.Errorf("Verify(%s, %s) = %+v, %v, %v; want %+v, %v", user, password, id, v, err, wantID, want)
		}
	}
	check("svc", "svc-file-pw", OK, Identity{User: "svc"})
	check("alice", "alice-file-pw", OK, Identity{User: "alice"})
	check("alice", slapdtest.Password("alice"), Rejected, Identity{}) // the file wins
	check("bob", slapdtest.Password("bob"), OK, Identity{"bob", "students"})
	check("bob", "bob-file-pw", Rejected, Identity{})
	if c.Tuning().Workers != 6 || c.FailureFloor() < users.FailureFloor() || c.FailureFloor() < d.FailureFloor() {
		t.Errorf("tuning %+v, floor %v (file %v, directory %v)", c.Tuning(), c.FailureFloor(), users.FailureFloor(), d.FailureFloor())
	}
	s.Stop()
	check("svc", "svc-file-pw", OK, Identity{User: "svc"})
	check("bob", slapdtest.Password("bob"), Unavailable, Identity{})
}
