package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// One bcrypt hash of "wonderland" (cost 5) written with each prefix: $2y$ is what
// `htpasswd -B` writes, $2a$ what x/crypto/bcrypt writes, $2b$ what OpenBSD writes;
// the algorithm is the same.
const (
	hash2a = "$2a$05$XGnucDWyqTPPVIX7zIwIPedgKccPsyvMcYFWVzsnpo2qXoM1ZlLWC"
	hash2y = "$2y$05$XGnucDWyqTPPVIX7zIwIPedgKccPsyvMcYFWVzsnpo2qXoM1ZlLWC"
	hash2b = "$2b$05$XGnucDWyqTPPVIX7zIwIPedgKccPsyvMcYFWVzsnpo2qXoM1ZlLWC"
)

func verify(u *UsersFile, user, password string) Verdict {
	_, v, _ := u.Verify(context.Background(), user, password)
	return v
}

func TestParseUsersFileAcceptsBcryptPrefixes(t *testing.T) {
	file := "# campus users\n\nalice:" + hash2y + "\nbob:" + hash2a + "\ncarol:" + hash2b + "\n"
	u, err := ParseUsersFile(strings.NewReader(file), "users")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		if id, v, err := u.Verify(context.Background(), name, "wonderland"); v != OK || id.User != name || err != nil {
			t.Errorf("%s: right password: %+v, %v, %v", name, id, v, err)
		}
		if verify(u, name, "Wonderland") != Rejected {
			t.Errorf("%s: wrong password accepted", name)
		}
		if !u.Has(name) {
			t.Errorf("Has(%q) = false", name)
		}
	}
	if verify(u, "mallory", "wonderland") != Rejected || u.Has("mallory") {
		t.Error("unknown user accepted")
	}
	if u.Users() != 3 || u.Source() != "users" {
		t.Errorf("Users() = %d, Source() = %q", u.Users(), u.Source())
	}
}

func TestParseUsersFileErrors(t *testing.T) {
	tests := []struct{ file, want string }{
		{"alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", `users:1: user "alice": only bcrypt hashes`},
		{"\nalice:$apr1$abc$def\n", `users:2: user "alice": only bcrypt hashes`},
		{"alice\n", "users:1: want user:bcrypt-hash"},
		{":" + hash2y + "\n", "users:1: want user:bcrypt-hash"},
		{strings.Repeat("a", 256) + ":" + hash2y + "\n", "users:1: user name longer than 255 bytes"},
		{"alice:$2y$05$short\n", `users:1: user "alice": crypto/bcrypt`},
		{"alice:$2y$18$" + hash2y[7:] + "\n", `users:1: user "alice": bcrypt cost 18 is above 17`},
		{"alice:" + hash2y + "\nalice:" + hash2y + "\n", `users:2: user "alice" is listed twice`},
		{"# nobody\n", "users: no users"},
		{"alice :" + hash2y + "\n", `users:1: user "alice ": a name with surrounding white space`},
		{"bob:" + hash2y + "\ncarol\u00a0:" + hash2y + "\n", `users:2: user "carol\u00a0": a name with surrounding white space`},
	}
	for _, tc := range tests {
		_, err := ParseUsersFile(strings.NewReader(tc.file), "users")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("file %q: error %v, want prefix %q", tc.file, err, tc.want)
		}
	}
}

// An unknown user must cost what a wrong password costs: the dummy hash is made at
// the highest cost of the file, and the floor is a check at that cost.
func TestDummyHashAndFloorFollowTheHighestCost(t *testing.T) {
	u, err := ParseUsersFile(strings.NewReader("alice:"+hash2y+"\n"), "users")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := bcrypt.Cost(u.dummy); got != 5 {
		t.Errorf("dummy hash cost %d, want the users' cost 5", got)
	}
	costly, err := bcrypt.GenerateFromPassword([]byte("x"), 8)
	if err != nil {
		t.Fatal(err)
	}
	mixed := "alice:" + hash2y + "\nbob:" + string(costly) + "\n"
	if u, err = ParseUsersFile(strings.NewReader(mixed), "users"); err != nil {
		t.Fatal(err)
	}
	if got, _ := bcrypt.Cost(u.dummy); got != 8 {
		t.Errorf("dummy hash cost %d, want the file's highest, 8", got)
	}
	// A cost-8 check is 8 times a cost-5 one; the floor must be near the former.
	start := time.Now()
	verify(u, "bob", "wrong")
	dear := time.Since(start)
	start = time.Now()
	verify(u, "alice", "wrong")
	cheap := time.Since(start)
	if floor := u.FailureFloor(); floor < 2*cheap || floor < dear/3 {
		t.Errorf("floor %v; a cost-8 check took %v, a cost-5 one %v", floor, dear, cheap)
	}
}

// hash10 is a bcrypt hash at cost 10, "wonderland" again.
const hash10 = "$2a$10$ivn6ojKHkLNaxHxpTzstfuBW4v63ilkUTDdXJpjtHpuuf96/F/jpu"

func TestWeakHashes(t *testing.T) {
	file := "alice:" + hash2y + "\n# comment\nbob:" + hash10 + "\ncarol:" + hash2b + "\n"
	u, err := parseUsers(strings.NewReader(file), "users") // no calibration at cost 10
	if err != nil {
		t.Fatal(err)
	}
	want := []WeakHash{{User: "alice", Line: 1, Cost: 5}, {User: "carol", Line: 4, Cost: 5}}
	got := u.WeakHashes()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("WeakHashes() = %+v, want %+v", got, want)
	}
	got[0].User = "changed"
	if u.WeakHashes()[0].User != "alice" {
		t.Error("WeakHashes returned its own slice")
	}
}

func TestHashPasswordWritesHtpasswdLine(t *testing.T) {
	line, err := HashPassword("alice", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "alice:$2y$10$") {
		t.Fatalf("line %q, want alice:$2y$10$...", line)
	}
	u, err := parseUsers(strings.NewReader(line), "users")
	if err != nil || bcrypt.CompareHashAndPassword(u.hashes["alice"], []byte("wonderland")) != nil || len(u.WeakHashes()) != 0 {
		t.Fatalf("own line does not verify, or is weak: %v", err)
	}
	for _, bad := range [][2]string{{"", "x"}, {"a:b", "x"}, {"a\nb", "x"}, {"alice", ""}, {"alice", strings.Repeat("x", 73)}, {" alice", "x"}, {"alice\t", "x"}} {
		if _, err := HashPassword(bad[0], bad[1]); err == nil {
			t.Errorf("HashPassword(%q, %d bytes) accepted", bad[0], len(bad[1]))
		}
	}
}

// FuzzParseUsers feeds arbitrary files to the users file parser: it must never
// panic, and what it accepts has users whose hashes bcrypt can read and whose
// names a login can bring (no surrounding white space).
func FuzzParseUsers(f *testing.F) {
	f.Add("alice:" + hash2y + "\n")
	f.Add("# c\n\nbob:" + hash2a + "\r\ncarol:" + hash2b)
	f.Add("alice:$2y$31$" + hash2y[7:])
	f.Add("alice:$2y$05$short\n:x\n")
	f.Fuzz(func(t *testing.T, file string) {
		u, err := parseUsers(strings.NewReader(file), "fuzz")
		if err != nil {
			return
		}
		if u.Users() == 0 {
			t.Fatal("accepted a file without users")
		}
		for user, hash := range u.hashes {
			if cost, err := bcrypt.Cost(hash); err != nil || cost > maxCost || user == "" || strings.TrimSpace(user) != user {
				t.Fatalf("accepted user %q with hash %q (cost %d, %v)", user, hash, cost, err)
			}
		}
	})
}
