package auth

import (
	"context"
	"testing"

	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// TestDirectoryLookupUser: a Kerberos user's groups come from a real slapd with
// the lookup's own filter (here mail, as AD's userPrincipalName, for full
// names); an unknown or ambiguous name is rejected; names that would change an
// unescaped filter match nothing; a stopped directory is unavailable, not a
// rejection, and logged as an outage like a password login's.
func TestDirectoryLookupUser(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	s.Modify(`dn: ` + slapdtest.UserDN("alice") + `
changetype: modify
add: mail
mail: alice@CAMPUS.EXAMPLE

dn: ` + slapdtest.UserDN("bob") + `
changetype: modify
add: mail
mail: bob@CAMPUS.EXAMPLE

dn: ` + slapdtest.UserDN("carol") + `
changetype: modify
add: mail
mail: shared@CAMPUS.EXAMPLE

dn: ` + slapdtest.UserDN("dave") + `
changetype: modify
add: mail
mail: shared@CAMPUS.EXAMPLE
`)
	var logs logBuffer
	d := newTestDirectory(t, ldapConfig(t, s), DirectoryOptions{Logger: logs.logger()})
	byMail, byUID := d.Lookup("(mail={user})"), d.Lookup("")
	ctx := context.Background()
	for _, tc := range []struct {
		l    *DirectoryLookup
		user string
		want Verdict
		id   Identity
	}{
		{byMail, "alice@CAMPUS.EXAMPLE", OK, Identity{User: "alice@CAMPUS.EXAMPLE", Group: "staff"}},
		{byMail, "bob@CAMPUS.EXAMPLE", OK, Identity{User: "bob@CAMPUS.EXAMPLE", Group: "students"}},
		{byMail, "shared@CAMPUS.EXAMPLE", Rejected, Identity{}}, // two entries: ambiguous
		{byMail, "*@CAMPUS.EXAMPLE", Rejected, Identity{}},
		{byMail, "eve@OTHER.EXAMPLE", Rejected, Identity{}},
		{byUID, "carol", OK, Identity{User: "carol", Group: "staff"}},
		{byUID, "dave", OK, Identity{User: "dave"}},                                          // in no group: shaping.default_group applies
		{byUID, slapdtest.OddUser, OK, Identity{User: slapdtest.OddUser, Group: "students"}}, // escaped, it matches itself
		{byUID, "odd*", Rejected, Identity{}},
		{byUID, "", Rejected, Identity{}},
	} {
		id, v, err := tc.l.LookupUser(ctx, tc.user)
		if v != tc.want || id != tc.id || err != nil {
			t.Errorf("LookupUser(%q) = %+v, %v, %v; want %+v, %v", tc.user, id, v, err, tc.id, tc.want)
		}
	}

	s.Stop()
	id, v, err := byMail.LookupUser(ctx, "alice@CAMPUS.EXAMPLE")
	if v != Unavailable || err == nil || ErrorKind(err) != KindUnreachable || id != (Identity{}) {
		t.Errorf("directory stopped: %+v, %v, %v; want unavailable (unreachable)", id, v, err)
	}
	if n := logs.count("directory unreachable"); n != 1 {
		t.Errorf("%d outage lines; want 1", n)
	}
	s.Restart()
	if _, v, err := byMail.LookupUser(ctx, "alice@CAMPUS.EXAMPLE"); v != OK {
		t.Errorf("directory back: %v, %v", v, err)
	}
}
