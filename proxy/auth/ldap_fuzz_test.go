package auth

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// FuzzUserFilter checks that no user name changes the user filter's structure:
// whatever the name, the filter compiles to the same AND of an objectClass
// presence test and one equality match on uid whose value is the name, byte for
// byte.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", "a*)(uid=*", `\`, "alice\x00", "al*", "é", "\xff", "(|(uid=*))", `\2a`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, user string) {
		filter := userFilter("(&(objectClass=*)(uid={user}))", user)
		p, err := ldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("user %q: filter %q does not compile: %v", user, filter, err)
		}
		if p.Tag != ldap.FilterAnd || len(p.Children) != 2 || p.Children[0].Tag != ldap.FilterPresent {
			t.Fatalf("user %q changed the filter's structure: %q", user, filter)
		}
		eq := p.Children[1]
		if eq.Tag != ldap.FilterEqualityMatch || len(eq.Children) != 2 {
			t.Fatalf("user %q: second term of %q is not one equality match", user, filter)
		}
		if attr, value := eq.Children[0].Data.String(), eq.Children[1].Data.String(); attr != "uid" || value != user {
			t.Fatalf("user %q: filter %q matches %s=%q", user, filter, attr, value)
		}
	})
}
