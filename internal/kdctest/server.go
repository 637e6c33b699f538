package kdctest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// writeConfigs writes krb5.conf (the clients') and kdc.conf (the KDC's).
// proxy.test, the name the binary's tests reach the proxy by, is in the campus
// realm, so that a client of the other realm finds the way to its tickets.
func (k *KDC) writeConfigs() error {
	addr := fmt.Sprintf("127.0.0.1:%d", k.Port)
	krb5 := fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
 allow_weak_crypto = false
[realms]
 %[1]s = {
  kdc = %[3]s
 }
 %[2]s = {
  kdc = %[3]s
 }
[domain_realm]
 .campus.example = %[1]s
 campus.example = %[1]s
 localhost = %[1]s
 proxy.test = %[1]s
`, Realm, OtherRealm, addr)
	realm := func(name string) string {
		base := filepath.Join(k.Dir, strings.ToLower(name))
		return fmt.Sprintf(" %s = {\n  database_name = %s.db\n  key_stash_file = %s.stash\n  acl_file = %s/kadm5.acl\n"+
			"  max_life = 10h\n  max_renewable_life = 1d\n"+
			"  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }\n",
			name, base, base, k.Dir)
	}
	kdc := fmt.Sprintf("[kdcdefaults]\n kdc_listen = %[1]s\n kdc_tcp_listen = %[1]s\n[realms]\n%[2]s%[3]s[logging]\n kdc = FILE:%[4]s\n",
		addr, realm(Realm), realm(OtherRealm), filepath.Join(k.Dir, "kdc.log"))
	for name, body := range map[string]string{k.krb5conf: krb5, k.kdcconf: kdc, filepath.Join(k.Dir, "kadm5.acl"): ""} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Restart starts krb5kdc again on the same port and databases, after
// [KDC.Stop]; it returns once the KDC accepts TCP connections.
func (k *KDC) Restart() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		k.t.Fatal("kdctest: Restart while running")
	}
	// -n keeps krb5kdc in the foreground, so that it is our child and its PID
	// the one we stop.
	cmd := exec.Command(k.bin, "-n", "-r", Realm, "-r", OtherRealm)
	cmd.Env = k.Env(filepath.Join(k.Dir, "none.cc"))
	k.out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = k.out, k.out
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		k.t.Fatalf("start krb5kdc: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	k.cmd, k.done = cmd, done
	addr := fmt.Sprintf("127.0.0.1:%d", k.Port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-done:
			k.cmd = nil
			k.t.Fatalf("krb5kdc exited at start: %s\n%s", k.out, k.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("krb5kdc does not accept connections on %s: %s", addr, k.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends krb5kdc by its PID (SIGTERM, SIGKILL after 5 s) and waits for it.
// Stopping a stopped KDC does nothing.
func (k *KDC) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd == nil {
		return
	}
	stop(k.cmd, k.done)
	k.cmd = nil
}

// Log returns the KDC's log file, for a failing test to show.
func (k *KDC) Log() string {
	b, _ := os.ReadFile(filepath.Join(k.Dir, "kdc.log"))
	return string(b)
}
