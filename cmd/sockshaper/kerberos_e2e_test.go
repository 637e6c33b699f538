package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestCheckConfigKerberos: check-config reads auth.kerberos's keytab as a start
// would and lists its principals, key versions and key types; a keytab that is
// missing, unreadable or without a key for a service name fails with the file
// named.
func TestCheckConfigKerberos(t *testing.T) {
	k := kdctest.Start(t)
	dir := t.TempDir()
	k.Keytab(filepath.Join(dir, "proxy.keytab"), kdctest.HTTPService, kdctest.SOCKSService)
	k.Keytab(filepath.Join(dir, "http-only.keytab"), kdctest.HTTPService)
	os.Mkdir(filepath.Join(dir, "a-folder.keytab"), 0o700)
	checkConfig := func(keytab string) (string, string, error) {
		config := filepath.Join(dir, "sockshaper.yaml")
		writeFile(t, config, `auth:
  users_file: ""
  kerberos:
    keytab_file: `+keytab+`
    service_names: [HTTP/proxy.campus.example, rcmd/proxy.campus.example]
    realms: [CAMPUS.EXAMPLE]
`)
		cmd := exec.Command(binary, "check-config", config)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	out, errOut, err := checkConfig("proxy.keytab")
	abs := filepath.Join(dir, "proxy.keytab")
	for _, want := range []string{
		"keytab " + abs + ": HTTP/proxy.campus.example@CAMPUS.EXAMPLE kvno 2: aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96\n",
		"keytab " + abs + ": rcmd/proxy.campus.example@CAMPUS.EXAMPLE kvno 2: aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96\n",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("check-config: %v\nstdout %q lacks %q\nstderr %s", err, out, want, errOut)
		}
	}
	for _, tc := range []struct{ keytab, want string }{
		{"missing.keytab", "no such file"},
		{"a-folder.keytab", "is a directory"},
		{"http-only.keytab", "no key of an accepted encryption type for rcmd/proxy.campus.example"},
	} {
		out, errOut, err := checkConfig(tc.keytab)
		if err == nil || !strings.Contains(errOut, filepath.Join(dir, tc.keytab)) || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %v, stdout %q, stderr %q; want a failure naming the file and %q", tc.keytab, err, out, errOut, tc.want)
		}
	}
}
