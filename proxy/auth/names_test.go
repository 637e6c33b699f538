package auth

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// TestUserNames is the table of names: what each naming makes of a login's
// name, and whether it can name an account.
func TestUserNames(t *testing.T) {
	type want struct {
		name string
		ok   bool
	}
	for _, tc := range []struct {
		user                     string
		exact, dirFold, dirExact want
	}{
		{"alice", want{"alice", true}, want{"alice", true}, want{"alice", true}},
		{"Alice", want{"Alice", true}, want{"alice", true}, want{"Alice", true}},
		{"ALICE", want{"ALICE", true}, want{"alice", true}, want{"ALICE", true}},
		{" alice", want{" alice", false}, want{"alice", true}, want{"alice", true}},
		{"alice  ", want{"alice  ", false}, want{"alice", true}, want{"alice", true}},
		{"\t Alice\n", want{"\t Alice\n", false}, want{"alice", true}, want{"Alice", true}},
		{"alice\u00a0", want{"alice\u00a0", false}, want{"alice", true}, want{"alice", true}}, // no-break space
		{"\u3000alice", want{"\u3000alice", false}, want{"alice", true}, want{"alice", true}}, // ideographic space
		{"al ice", want{"al ice", true}, want{"al ice", true}, want{"al ice", true}},          // inner spaces are the directory's
		{"ÉLODIE", want{"ÉLODIE", true}, want{"élodie", true}, want{"ÉLODIE", true}},
		{"ＡＬＩＣＥ", want{"ＡＬＩＣＥ", true}, want{"ａｌｉｃｅ", true}, want{"ＡＬＩＣＥ", true}}, // the DN catches it
		{"", want{"", false}, want{"", false}, want{"", false}},
		{"   ", want{"   ", false}, want{"", false}, want{"", false}},
		{"al\xffice", want{"al\xffice", true}, want{"al\xffice", false}, want{"al\xffice", false}}, // not UTF-8
	} {
		for _, c := range []struct {
			naming string
			f      func(string) (string, bool)
			want   want
		}{
			{"users file", exactName, tc.exact},
			{"directory, fold", func(u string) (string, bool) { return directoryName(u, true) }, tc.dirFold},
			{"directory, exact", func(u string) (string, bool) { return directoryName(u, false) }, tc.dirExact},
		} {
			if name, ok := c.f(tc.user); name != c.want.name || ok != c.want.ok {
				t.Errorf("%s: %q → %q, %v; want %q, %v", c.naming, tc.user, name, ok, c.want.name, c.want.ok)
			}
		}
	}
}

// foldingDir is a directory stand-in that names users as a folding directory does.
type foldingDir struct{ *stubVerifier }

func (*foldingDir) UserName(user string) (string, bool) { return directoryName(user, true) }

// TestCombinedUserNames: the file's names are themselves; other names are the
// directory's, unless that is a name the file lists (the file's user shadows
// every spelling of it).
func TestCombinedUserNames(t *testing.T) {
	var lines strings.Builder
	for _, u := range []string{"alice", "Svc"} {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines.WriteString(u + ":" + string(hash) + "\n")
	}
	users, err := parseUsers(strings.NewReader(lines.String()), "test.htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	c := NewCombined(users, &foldingDir{&stubVerifier{}})
	for _, tc := range []struct {
		user, name string
		ok         bool
	}{
		{"alice", "alice", true},
		{"Alice", "alice", false}, // the file's alice, misspelt: counts against her
		{" alice", "alice", false},
		{"Svc", "Svc", true},
		{"svc", "svc", true}, // not the file's "Svc": a directory user
		{"SVC", "svc", true},
		{"Bob ", "bob", true},
		{" ", "", false},
	} {
		if name, ok := c.UserName(tc.user); name != tc.name || ok != tc.ok {
			t.Errorf("UserName(%q) = %q, %v; want %q, %v", tc.user, name, ok, tc.name, tc.ok)
		}
	}
	// Verify routes by the name it is given, which is a UserName fixed point.
	if _, v, _ := c.Verify(context.Background(), "alice", "pw"); v != OK {
		t.Errorf("the file's alice: %v", v)
	}
}

// FuzzUserName checks the namings on any input: a name is a fixed point (its
// own name, and acceptable), carries no surrounding white space, is lower-case
// when folded, and spellings that differ only in ASCII case and surrounding
// spaces share one folded name; the users file accepts exactly the names
// without surrounding white space, unchanged.
func FuzzUserName(f *testing.F) {
	for _, s := range []string{"alice", " Alice ", "ALİCE", "ＡＬＩＣＥ", "\u00a0bob", "", " ", "ß", "Σ", "\xff", "a\x00b", "\u2028x\u2029"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, user string) {
		for _, fold := range []bool{true, false} {
			name, ok := directoryName(user, fold)
			if !ok {
				continue
			}
			if again, ok2 := directoryName(name, fold); again != name || !ok2 {
				t.Fatalf("fold %v: %q → %q → %q, %v: not a fixed point", fold, user, name, again, ok2)
			}
			if strings.TrimSpace(name) != name || name == "" || !utf8.ValidString(name) {
				t.Fatalf("fold %v: %q → %q", fold, user, name)
			}
			if fold && strings.ToLower(name) != name {
				t.Fatalf("fold: %q → %q, not lower-case", user, name)
			}
			if fold {
				if other, _ := directoryName(" "+strings.ToUpper(user)+"\t", true); asciiOnly(user) && other != name {
					t.Fatalf("fold: %q → %q but its upper-case spelling → %q", user, name, other)
				}
			}
		}
		name, ok := exactName(user)
		if name != user || ok != (user != "" && strings.TrimSpace(user) == user) {
			t.Fatalf("users file: %q → %q, %v", user, name, ok)
		}
	})
}

func asciiOnly(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
