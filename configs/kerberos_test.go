package configs

import (
	"path/filepath"
	"strings"
	"testing"
)

// kerberosBadConfigs are the exact errors of testdata/kerberos-bad-*.yaml.
func kerberosBadConfigs() map[string]string {
	return map[string]string{
		"kerberos-bad-filter.yaml": `testdata/kerberos-bad-filter.yaml:11: auth.kerberos.ldap_user_filter: "(userPrincipalName=*)" does not contain {user}, so it cannot find the user's entry`,
		"kerberos-bad-names.yaml": `testdata/kerberos-bad-names.yaml:6: auth.kerberos.service_names[1]: "http/PROXY.campus.example" is listed twice (service names compare without case)
testdata/kerberos-bad-names.yaml:7: auth.kerberos.service_names[2]: "HTTP/proxy.campus.example@CAMPUS.EXAMPLE": want service/host without a realm, such as HTTP/proxy.campus.example
testdata/kerberos-bad-names.yaml:8: auth.kerberos.service_names[3]: "proxy.campus.example": want service/host without a realm, such as HTTP/proxy.campus.example
testdata/kerberos-bad-names.yaml:9: auth.kerberos.realms[1]: "bad realm" is not a realm name such as CAMPUS.EXAMPLE
testdata/kerberos-bad-names.yaml:9: auth.kerberos.realms[2]: "CAMPUS.EXAMPLE" is listed twice
testdata/kerberos-bad-names.yaml:10: auth.kerberos.user_name: "long": want "short" (alice) or "full" (alice@REALM)
testdata/kerberos-bad-names.yaml:11: auth.kerberos.max_clock_skew: must be at most 1h0m0s: it is how long a replayed authenticator must be remembered
testdata/kerberos-bad-names.yaml:12: auth.kerberos.enctypes[1]: "des-cbc-md5" is not a supported encryption type; want one of aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96, aes256-cts-hmac-sha384-192, aes128-cts-hmac-sha256-128, arcfour-hmac, des3-cbc-sha1-kd`,
		"kerberos-bad-off.yaml": `testdata/kerberos-bad-off.yaml:2: auth.kerberos.keytab_file: is empty, which turns Kerberos off, but other auth.kerberos keys are set; set keytab_file or remove them`,
		"kerberos-bad-required.yaml": `testdata/kerberos-bad-required.yaml:2: auth.kerberos.service_names: is required with auth.kerberos.keytab_file: the service principals clients ask tickets for, such as HTTP/proxy.campus.example
testdata/kerberos-bad-required.yaml:2: auth.kerberos.realms: is required with auth.kerberos.keytab_file: the realms whose users may log in, such as CAMPUS.EXAMPLE
testdata/kerberos-bad-required.yaml:4: auth.kerberos.max_clock_skew: must be greater than 0
testdata/kerberos-bad-required.yaml:5: auth.kerberos.enctypes: must list at least one encryption type (the default is the AES types)`,
		"kerberos-bad-short.yaml": `testdata/kerberos-bad-short.yaml:2: auth.kerberos.user_name: "short" with 2 realms would make alice@CAMPUS.EXAMPLE and alice@PARTNER.EXAMPLE one user; use "full", or one realm
testdata/kerberos-bad-short.yaml:6: auth.kerberos.ldap_user_filter: needs auth.ldap.url: it finds Kerberos users in that directory`,
	}
}

func TestKerberosBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/kerberos-bad-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	want := kerberosBadConfigs()
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%q): no error", file)
			}
			if got := err.Error(); got != want[filepath.Base(file)] {
				t.Errorf("Load(%q) error:\n%s\nwant:\n%s", file, got, want[filepath.Base(file)])
			}
			checkFieldErrors(t, err)
		})
	}
	if len(files) != len(want) {
		t.Errorf("%d files, %d expected errors", len(files), len(want))
	}
}

// TestKerberosIsAuthentication: the fronts accept tickets (HTTP Negotiate,
// SOCKS5 GSS-API), so a keytab alone is authentication and may serve clients
// beyond loopback; without it, such a config is still an open proxy.
func TestKerberosIsAuthentication(t *testing.T) {
	const config = `
access: {client_networks: [10.0.0.0/8]}
auth:
  users_file: ""
  kerberos:
    keytab_file: /etc/sockshaper/proxy.keytab
    service_names: [HTTP/proxy.campus.example]
    realms: [CAMPUS.EXAMPLE]
`
	if _, err := Parse([]byte(config), "t.yaml"); err != nil {
		t.Errorf("Kerberos only, clients of 10.0.0.0/8: %v", err)
	}
	open := strings.Split(config, "  kerberos:")[0]
	if _, err := Parse([]byte(open), "t.yaml"); err == nil || !strings.Contains(err.Error(), "auth.users_file: empty means no authentication") {
		t.Errorf("no authentication, clients of 10.0.0.0/8: error %v; want the open-proxy refusal", err)
	}
}

func TestKerberosDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
auth:
  kerberos:
    keytab_file: k.keytab
    service_names: [HTTP/proxy.campus.example]
    realms: [CAMPUS.EXAMPLE]
`), "/etc/sockshaper/t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Auth.Kerberos
	if k.UserName != KerberosShortNames || k.MaxClockSkew.Minutes() != 5 || len(k.Enctypes) != 4 {
		t.Errorf("defaults %+v", k)
	}
	if got := k.EnctypeIDs(); len(got) != 4 || got[0] != 18 || got[1] != 17 || got[2] != 20 || got[3] != 19 {
		t.Errorf("EnctypeIDs() = %v; want [18 17 20 19]", got)
	}
}
