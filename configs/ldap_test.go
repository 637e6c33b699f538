package configs

import (
	"strings"
	"testing"
)

// TestLDAPAuthIsNotAnOpenProxy: a directory alone authenticates, so client
// networks beyond loopback are accepted; plain ldap:// is accepted to a loopback
// host only.
func TestLDAPAuthIsNotAnOpenProxy(t *testing.T) {
	const block = `
access: {client_networks: [10.0.0.0/8]}
auth:
  ldap:
    url: %s
    bind_dn: "cn=sockshaper,ou=services,dc=campus,dc=example"
    bind_password_file: ldap.secret
    base_dn: "ou=people,dc=campus,dc=example"
`
	for _, tc := range []struct {
		url, wantErr string
	}{
		{"ldaps://ldap.campus.example", ""},
		{"ldap://127.0.0.1:3389", ""},
		{"ldap://[::1]", ""},
		{"ldap://localhost", ""},
		{"ldap://10.0.0.5", "clear text"},
		{"ldaps://ldap.campus.example:0", "not a number from 1 to 65535"},
		{"ldaps://ldap.campus.example/dc=campus", "want ldaps://host"},
		{"ldaps://u:p@ldap.campus.example", "want ldaps://host"},
	} {
		_, err := Parse([]byte(strings.Replace(block, "%s", `"`+tc.url+`"`, 1)), "t.yaml")
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("url %s: %v", tc.url, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("url %s: error %v; want one containing %q", tc.url, err, tc.wantErr)
		}
	}
}

func TestLDAPGroupsKeepOrder(t *testing.T) {
	cfg, err := Parse([]byte(`
shaping:
  default_group: b
  groups: {a: {download: 1Mbit}, b: {download: 2Mbit}}
auth:
  ldap:
    url: ldaps://ldap.example
    bind_dn: cn=s,dc=example
    bind_password_file: s
    base_dn: dc=example
    groups: {"cn=z,dc=example": b, "cn=a,dc=example": a, "cn=m,dc=example": b}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range cfg.Auth.LDAP.Groups {
		got = append(got, g.DN+"="+g.Group)
	}
	if want := "cn=z,dc=example=b cn=a,dc=example=a cn=m,dc=example=b"; strings.Join(got, " ") != want {
		t.Errorf("groups %v; want the file's order %s", got, want)
	}
}
