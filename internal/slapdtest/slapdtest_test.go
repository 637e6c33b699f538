package slapdtest

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServer checks the fixture with ldap-utils: memberOf on, the service account
// reads users' groups, a user binds with her password, Stop and Restart keep the
// data.
func TestServer(t *testing.T) {
	s := Start(t, Options{})
	search := func() string {
		out, err := exec.Command("ldapsearch", "-x", "-LLL", "-H", s.URL, "-D", ServiceDN, "-w", ServicePassword,
			"-b", PeopleDN, "(uid=carol)", "memberOf").CombinedOutput()
		if err != nil {
			t.Fatalf("ldapsearch: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := search(); !strings.Contains(out, "memberOf: "+StaffGroup) || !strings.Contains(out, "memberOf: "+StudentsGroup) {
		t.Errorf("carol's memberOf: %s", out)
	}
	if out, err := exec.Command("ldapwhoami", "-x", "-H", s.URL, "-D", UserDN(OddUser), "-w", Password(OddUser)).CombinedOutput(); err != nil {
		t.Errorf("odd user bind: %v %s", err, out)
	}
	s.Stop()
	if err := exec.Command("ldapwhoami", "-x", "-H", s.URL).Run(); err == nil {
		t.Error("stopped server answers")
	}
	s.Restart()
	if out := search(); !strings.Contains(out, "uid=carol") {
		t.Errorf("after restart: %s", out)
	}
}

func TestNoMemberOf(t *testing.T) {
	s := Start(t, Options{NoMemberOf: true})
	out, err := exec.Command("ldapsearch", "-x", "-LLL", "-H", s.URL, "-D", ServiceDN, "-w", ServicePassword,
		"-b", GroupsDN, "(member="+UserDN("alice")+")", "1.1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), StaffGroup) {
		t.Errorf("member search: %v %s", err, out)
	}
}
