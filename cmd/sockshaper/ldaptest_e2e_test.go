package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// TestLDAPTestCommand runs `sockshaper ldap-test` against a real slapd: what a
// login resolves to, and each way it fails, with the exit code.
func TestLDAPTestCommand(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sockshaper.yaml")
	cfg := ldapDaemonConfig(t, s, "", "", groupShaping+"  members: {dave: staff}\n")
	writeFile(t, cfgFile, cfg)
	run := func(stdin string, args ...string) (string, int) {
		t.Helper()
		out, code := runCommand(t, stdin, append([]string{"ldap-test", "-config", cfgFile}, args...)...)
		t.Logf("$ echo ... | sockshaper ldap-test -config sockshaper.yaml %s\n%s(exit %d)", strings.Join(args, " "), out, code)
		return out, code
	}
	for _, tc := range []struct {
		user, password string
		code           int
		want           []string
	}{
		{"carol", slapdtest.Password("carol"), 0, []string{
			"entry:      " + slapdtest.UserDN("carol"), "password:   ok", "groups:     2 (memberOf)",
			slapdtest.StaffGroup + " -> staff", slapdtest.StudentsGroup + " -> students",
			"shaping:    staff (first match in auth.ldap.groups: " + slapdtest.StaffGroup + ")"}},
		{"dave", slapdtest.Password("dave"), 0, []string{"groups:     0", "shaping:    staff (shaping.members lists dave"}},
		{"ALICE", slapdtest.Password("alice"), 0, []string{"login as:   alice"}},
		{"alice", "Wr0ng-Guess!", 1, []string{"entry:      " + slapdtest.UserDN("alice"), "FAILED:     wrong password"}},
		{"mallory", "mallory-guess-42", 1, []string{"FAILED:     user not found: no entry under " + slapdtest.PeopleDN + " matches (uid={user})"}},
		{"alice", "", 1, []string{"FAILED:     empty user name or password"}},
	} {
		out, code := run(tc.password+"\n", tc.user)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.user, code, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q", tc.user, w)
			}
		}
		if tc.password != "" && strings.Contains(out, tc.password) {
			t.Errorf("%s: the password is in the output", tc.user)
		}
	}

	other, err := slapdtest.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.CAFile+".other", string(other.PEM))
	writeFile(t, cfgFile, strings.Replace(cfg, s.CAFile, s.CAFile+".other", 1))
	if out, code := run(slapdtest.Password("bob")+"\n", "bob"); code != 1 ||
		!strings.Contains(out, "FAILED:     TLS error: StartTLS with") || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("wrong CA: exit %d; want 1 and a TLS error naming the certificate", code)
	}
	writeFile(t, cfgFile, cfg)
	s.Stop()
	if out, code := run(slapdtest.Password("bob")+"\n", "bob"); code != 1 ||
		!strings.Contains(out, "FAILED:     directory unreachable: connect to") || !strings.Contains(out, "connection refused") {
		t.Errorf("stopped directory: exit %d; want 1 and the underlying error", code)
	}
	if out, code := runCommand(t, "", "ldap-test", "bob"); code != 2 || !strings.Contains(out, "usage: sockshaper ldap-test") {
		t.Errorf("no -config: exit %d, %q", code, out)
	}
}

// TestCheckConfigLDAP: check-config reads the directory's files and names the
// field when one is missing, without connecting and without printing the secret.
func TestCheckConfigLDAP(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	s.Stop() // check-config never connects
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sockshaper.yaml")
	cfg := ldapDaemonConfig(t, s, "", "", groupShaping)
	writeFile(t, cfgFile, cfg)
	out, code := runCommand(t, "", "check-config", "-config", cfgFile)
	if code != 0 || !strings.Contains(out, "directory "+s.URL+", 2 groups mapped") {
		t.Errorf("good LDAP config: exit %d, %q", code, out)
	}
	// A relative secret is read from the config's folder.
	writeFile(t, filepath.Join(dir, "ldap.secret"), slapdtest.ServicePassword)
	start := strings.Index(cfg, "bind_password_file: ")
	end := start + strings.Index(cfg[start:], "\n")
	writeFile(t, cfgFile, cfg[:start]+"bind_password_file: ldap.secret"+cfg[end:])
	if out, code := runCommand(t, "", "check-config", "-config", cfgFile); code != 0 {
		t.Errorf("relative bind_password_file: exit %d, %q", code, out)
	}
	os.Remove(filepath.Join(dir, "ldap.secret"))
	out, code = runCommand(t, "", "check-config", "-config", cfgFile)
	if code != 1 || !strings.Contains(out, cfgFile+": auth.ldap.bind_password_file: open "+filepath.Join(dir, "ldap.secret")) {
		t.Errorf("missing secret: exit %d, %q", code, out)
	}
	writeFile(t, cfgFile, strings.Replace(cfg, "students: {upload: 0, download: 512KiB}", "pupils: {upload: 0, download: 512KiB}", 1))
	out, code = runCommand(t, "", "check-config", "-config", cfgFile)
	if code != 1 || !strings.Contains(out, `auth.ldap.groups["`+slapdtest.StudentsGroup+`"]: group "students" is not defined`) {
		t.Errorf("unmapped group: exit %d, %q", code, out)
	}
	if strings.Contains(out, slapdtest.ServicePassword) {
		t.Error("check-config printed the service account's password")
	}
}
