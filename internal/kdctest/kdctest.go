// Package kdctest runs a real MIT Kerberos KDC (Debian's krb5-kdc) for tests: two
// realms in a temporary folder with their own krb5.conf and kdc.conf, on a free
// loopback port, with users, service principals and a cross-realm trust, keytabs
// exported with kadmin.local and tickets got with kinit and kvno into per-test
// credential caches. The KDC is stopped by PID when the test ends. The auth and
// socks5 packages' tests and the binary's tests share it.
package kdctest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The realms: users of Realm may log in; OtherRealm trusts nothing but is trusted
// by Realm (krbtgt/CAMPUS.EXAMPLE@OTHER.EXAMPLE), so its users get tickets for
// Realm's services.
const (
	Realm      = "CAMPUS.EXAMPLE"
	OtherRealm = "OTHER.EXAMPLE"
)

// The service principals of Realm. HTTPService and SOCKSService are the proxy's;
// OtherService is another host's; LegacyService has an RC4 key only, so its
// tickets are RC4 tickets.
const (
	HTTPService   = "HTTP/proxy.campus.example"
	SOCKSService  = "rcmd/proxy.campus.example"
	OtherService  = "HTTP/other.campus.example"
	LegacyService = "HTTP/legacy.campus.example"
)

// Users returns the users: alice and bob of Realm, eve of OtherRealm, as principal
// names with the realm.
func Users() []string {
	return []string{"alice@" + Realm, "bob@" + Realm, "eve@" + OtherRealm}
}

// Password returns principal's password: its name before the "@", then "-krb-pw".
func Password(principal string) string {
	name, _, _ := strings.Cut(principal, "@")
	return name + "-krb-pw"
}

// KDC is a running krb5kdc serving Realm and OtherRealm.
type KDC struct {
	// Dir holds the configs, the databases, the log and the caches tests make.
	Dir string
	// Port is the KDC's TCP and UDP port on 127.0.0.1.
	Port int

	t        testing.TB
	bin      string
	krb5conf string
	kdcconf  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// Start creates both realms' databases, their principals and the trust, starts
// krb5kdc and stops it when the test ends. Without the MIT tools the test is
// skipped, or fails under CI=true.
func Start(t testing.TB) *KDC {
	t.Helper()
	k := &KDC{t: t, Dir: t.TempDir(), bin: tool(t, "krb5kdc")}
	for _, name := range []string{"kdb5_util", "kadmin.local", "kinit", "kvno"} {
		tool(t, name)
	}
	k.krb5conf, k.kdcconf = filepath.Join(k.Dir, "krb5.conf"), filepath.Join(k.Dir, "kdc.conf")
	k.Port = freePort(t)
	if err := k.writeConfigs(); err != nil {
		t.Fatal(err)
	}
	for _, realm := range []string{Realm, OtherRealm} {
		k.run(nil, "kdb5_util", "create", "-r", realm, "-s", "-P", "master-"+realm)
	}
	k.Kadmin(Realm, principalsOf(Realm)...)
	k.Kadmin(OtherRealm, principalsOf(OtherRealm)...)
	k.Restart()
	t.Cleanup(k.Stop)
	return k
}

// principalsOf returns the kadmin.local queries that fill realm.
func principalsOf(realm string) []string {
	trust := "addprinc -pw trust-secret -e aes256-cts-hmac-sha1-96:normal krbtgt/" + Realm + "@" + OtherRealm
	if realm == OtherRealm {
		return []string{trust, "addprinc -pw " + Password("eve") + " eve"}
	}
	return []string{
		"addprinc -pw " + Password("alice") + " alice",
		"addprinc -pw " + Password("bob") + " bob",
		"addprinc -randkey " + HTTPService,
		"addprinc -randkey " + SOCKSService,
		"addprinc -randkey " + OtherService,
		"addprinc -randkey -e arcfour-hmac:normal " + LegacyService,
		trust,
	}
}

// tool finds an MIT tool, which Debian puts in /usr/sbin for the server's.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); fileExists(p) {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: install the Debian packages krb5-kdc, krb5-admin-server and krb5-user (scripts/test.sh does)", name)
	}
	t.Skipf("%s not found: apt-get install krb5-kdc krb5-admin-server krb5-user", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freePort returns a port free on 127.0.0.1 for TCP and for UDP, which the KDC
// serves both on.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// Env returns the environment that points the MIT tools (and libgssapi in curl)
// at this KDC and at the credential cache ccache.
func (k *KDC) Env(ccache string) []string {
	return append(os.Environ(), "KRB5_CONFIG="+k.krb5conf, "KRB5_KDC_PROFILE="+k.kdcconf,
		"KRB5CCNAME=FILE:"+ccache, "KRB5_TRACE=/dev/null")
}

// Krb5Conf returns the path of the clients' krb5.conf.
func (k *KDC) Krb5Conf() string { return k.krb5conf }

// run runs an MIT tool with this KDC's environment and stdin, and fails the test
// when it fails.
func (k *KDC) run(stdin []byte, name string, args ...string) string {
	k.t.Helper()
	out, err := k.runErr(stdin, "", name, args...)
	if err != nil {
		k.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (k *KDC) runErr(stdin []byte, ccache, name string, args ...string) (string, error) {
	cmd := exec.Command(tool(k.t, name), args...)
	cmd.Env = k.Env(cmp(ccache, filepath.Join(k.Dir, "none.cc")))
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Kadmin runs kadmin.local queries on realm's database, in one process.
func (k *KDC) Kadmin(realm string, queries ...string) string {
	k.t.Helper()
	return k.run([]byte(strings.Join(queries, "\n")+"\n"), "kadmin.local", "-r", realm)
}

// Keytab exports the keys of principals (of Realm) into the keytab at path,
// appending to it if it exists. Each export gives the principal new random keys
// of the realm's encryption types (AES) under the next key version.
func (k *KDC) Keytab(path string, principals ...string) {
	k.t.Helper()
	k.KeytabEnctypes(path, "", principals...)
}

// KeytabEnctypes is [KDC.Keytab] with the new keys of the types in enctypes, a
// kadmin key/salt list such as "arcfour-hmac:normal" ("" for the realm's).
func (k *KDC) KeytabEnctypes(path, enctypes string, principals ...string) {
	k.t.Helper()
	qs := make([]string, len(principals))
	for i, p := range principals {
		qs[i] = "ktadd -k " + path + " " + p
		if enctypes != "" {
			qs[i] = "ktadd -k " + path + " -e " + enctypes + " " + p
		}
	}
	out := k.Kadmin(Realm, qs...)
	if strings.Count(out, "added to keytab") < len(principals) {
		k.t.Fatalf("ktadd: %s", out)
	}
}

// NewCCache returns the path of a new, empty credential cache file.
func (k *KDC) NewCCache() string {
	f, err := os.CreateTemp(k.Dir, "cc-*")
	if err != nil {
		k.t.Fatal(err)
	}
	f.Close()
	os.Remove(f.Name())
	return f.Name()
}

// Kinit gets principal a ticket-granting ticket into a new credential cache and
// returns the cache's path; args go to kinit (such as "-l", "5s").
func (k *KDC) Kinit(principal string, args ...string) string {
	k.t.Helper()
	cc := k.NewCCache()
	args = append(args, principal)
	if out, err := k.runErr([]byte(Password(principal)+"\n"), cc, "kinit", args...); err != nil {
		k.t.Fatalf("kinit %s: %v\n%s", principal, err, out)
	}
	return cc
}

// Kvno gets a service ticket for service into ccache (as a client does before it
// sends the ticket) and returns kvno's output.
func (k *KDC) Kvno(ccache, service string) string {
	k.t.Helper()
	out, err := k.KvnoErr(ccache, service)
	if err != nil {
		k.t.Fatalf("kvno %s: %v\n%s", service, err, out)
	}
	return out
}

// KvnoErr is [KDC.Kvno] that returns the error.
func (k *KDC) KvnoErr(ccache, service string) (string, error) {
	return k.runErr(nil, ccache, "kvno", service)
}
