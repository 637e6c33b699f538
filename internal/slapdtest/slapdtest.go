// Package slapdtest runs a real OpenLDAP server (Debian's slapd) for tests: a
// throwaway slapd.conf and mdb database in a temp folder, the memberof overlay (or
// not), a service account, users in two groups, on free loopback ports, with
// ldap:// (StartTLS) and ldaps:// served with a test CA, stopped by PID. The auth
// package's tests and the binary's tests share it.
package slapdtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/proctest"
)

// The directory's fixed names.
const (
	Suffix          = "dc=campus,dc=example"
	PeopleDN        = "ou=people," + Suffix
	GroupsDN        = "ou=groups," + Suffix
	ServiceDN       = "cn=sockshaper,ou=services," + Suffix
	ServicePassword = "service-secret"
	StaffGroup      = "cn=staff," + GroupsDN
	StudentsGroup   = "cn=students," + GroupsDN
	rootDN          = "cn=admin," + Suffix
	rootPassword    = "admin-secret"
)

// The users: alice is staff, bob a student, carol both (students listed first in
// the directory), dave in no group. OddUser's name holds every character a filter
// treats specially; her entry is found only by that exact name.
const OddUser = `odd(*)\name`

// Users returns the users of the directory and their directory groups.
func Users() map[string][]string {
	return map[string][]string{
		"alice": {StaffGroup},
		"bob":   {StudentsGroup},
		"carol": {StudentsGroup, StaffGroup},
		"dave":  nil,
		OddUser: {StudentsGroup},
	}
}

// Password returns user's password in the directory.
func Password(user string) string { return user + "-campus-pw" }

// UserDN returns the DN of user's entry.
func UserDN(user string) string {
	if user == OddUser {
		return "cn=odd user," + PeopleDN
	}
	return "uid=" + user + "," + PeopleDN
}

// Options choose what the server offers.
type Options struct {
	// NoMemberOf leaves the memberof overlay out, as in a directory without
	// memberOf: groups are then found by searching for their member.
	NoMemberOf bool
}

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:PORT; it offers StartTLS.
	URL string
	// LDAPSURL is ldaps://127.0.0.1:PORT.
	LDAPSURL string
	// CAFile is the PEM file of the CA that signed the server's certificate.
	CAFile string
	// Dir is the server's folder: slapd.conf, the database and the certificates.
	Dir string

	t    testing.TB
	bin  string
	urls string

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

// Start runs a slapd with the users loaded and stops it when the test ends. Without
// slapd the test is skipped, or fails under CI=true.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := findSlapd(t)
	dir := t.TempDir()
	s := &Server{t: t, bin: bin, Dir: dir, CAFile: filepath.Join(dir, "ca.pem")}
	if err := s.writeFiles(opts); err != nil {
		t.Fatal(err)
	}
	plain, tls := freePort(t), freePort(t)
	s.URL, s.LDAPSURL = "ldap://"+plain, "ldaps://"+tls
	s.urls = s.URL + "/ " + s.LDAPSURL + "/"
	s.Restart()
	t.Cleanup(s.Stop)
	s.Load(data())
	return s
}

// findSlapd finds the slapd binary, which Debian installs in /usr/sbin.
func findSlapd(t testing.TB) string {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/slapd"); err == nil {
		return "/usr/sbin/slapd"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("slapd not found: install the Debian packages slapd and ldap-utils (scripts/test.sh does)")
	}
	t.Skip("slapd not found: apt-get install slapd ldap-utils")
	return ""
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeFiles writes the CA, the server's certificate and key, slapd.conf and the
// database folder.
func (s *Server) writeFiles(opts Options) error {
	ca, err := NewCA("sockshaper test CA")
	if err != nil {
		return err
	}
	cert, key, err := ca.Issue()
	if err != nil {
		return err
	}
	var conf bytes.Buffer
	if err := confTemplate().Execute(&conf, map[string]any{
		"Dir": s.Dir, "MemberOf": !opts.NoMemberOf, "Suffix": Suffix, "RootDN": rootDN,
		"RootPW": rootPassword, "ServiceDN": ServiceDN,
	}); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"ca.pem": ca.PEM, "cert.pem": cert, "key.pem": key, "slapd.conf": conf.Bytes()} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return os.Mkdir(filepath.Join(s.Dir, "db"), 0o700)
}

// Restart starts slapd again on the same ports and database, after [Server.Stop];
// it returns once the server accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("slapdtest: Restart while running")
	}
	// -d 0 keeps slapd in the foreground, so that it is our child and its PID
	// the one we stop; it logs nothing at level 0.
	cmd := exec.Command(s.bin, "-f", filepath.Join(s.Dir, "slapd.conf"), "-h", s.urls, "-d", "0")
	s.log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	proctest.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start slapd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	addr := strings.TrimPrefix(s.URL, "ldap://")
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-done:
			s.cmd = nil
			s.t.Fatalf("slapd exited at start: %s", s.log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("slapd does not accept connections on %s: %s", addr, s.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends slapd with SIGTERM (SIGKILL after 5 s) and waits for it. Stopping a
// stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Pause stops slapd with SIGSTOP: the kernel still accepts connections, but no
// request is answered, as with a directory that hangs. Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused slapd.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("slapdtest: signal to a stopped server")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// PID returns slapd's process ID, 0 when stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Load adds the entries of an LDIF text with ldapadd, as the directory's manager.
func (s *Server) Load(ldif string) { s.ldapTool("ldapadd", ldif) }

// Modify applies an LDIF text of changes with ldapmodify.
func (s *Server) Modify(ldif string) { s.ldapTool("ldapmodify", ldif) }

func (s *Server) ldapTool(tool, ldif string) {
	s.t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			s.t.Fatalf("%s not found: install the Debian package ldap-utils", tool)
		}
		s.t.Skipf("%s not found: apt-get install ldap-utils", tool)
	}
	cmd := exec.Command(bin, "-x", "-H", s.URL, "-D", rootDN, "-w", rootPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.t.Fatalf("%s: %v\n%s", tool, err, out)
		}
		s.t.Fatal(err)
	}
}

// String names the server for logs.
func (s *Server) String() string { return fmt.Sprintf("slapd %s %s", s.URL, s.LDAPSURL) }
