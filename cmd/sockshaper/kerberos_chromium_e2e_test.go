package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestChromiumKerberos: headless Chromium with alice's credential cache
// (KRB5CCNAME, KRB5_CONFIG) and no password anywhere (the proxy has no users
// file) loads a page through the HTTP front: it answers the 407's Negotiate
// challenge with a ticket for HTTP/proxy.test from its own GSS-API library.
// Delegation stays off (--auth-negotiate-delegate-allowlist unset). The
// accounting line names alice and her shaping group.
func TestChromiumKerberos(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	p := startKrbProxy(t)
	config := strings.Replace(krbConfig(""), "  users_file: users.htpasswd\n", "  users_file: \"\"\n", 1)
	d := startDaemonAt(t, p.dir, nil, config, "")
	web := startWebServer(t, false)
	alice := p.k.Kinit("alice@" + kdctest.Realm)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The service principal is HTTP/ and the proxy's name as configured:
	// canonicalised through the resolver rule, it would be HTTP/127.0.0.1.
	// Chromium has no switch for that, only the DisableAuthNegotiateCnameLookup
	// policy, whose pref lives in the profile's Local State.
	profile := t.TempDir()
	writeFile(t, filepath.Join(profile, "Local State"), `{"auth": {"disable_negotiate_cname_lookup": true}}`)
	var args []string
	for _, f := range chromiumFlags(t) {
		if !strings.HasPrefix(f, "--user-data-dir=") {
			args = append(args, f)
		}
	}
	args = append(args, "--user-data-dir="+profile, "--proxy-server=http://proxy.test:"+portOf(d.listen),
		"--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP proxy.test 127.0.0.1",
		"--auth-server-allowlist=proxy.test", "--dump-dom", web.URL+"/page")
	cmd := exec.CommandContext(ctx, chromium, args...)
	cmd.Env = p.k.Env(alice)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errs.String())
	}
	t.Logf("chromium --dump-dom printed: %s", strings.TrimSpace(out.String()))
	if !strings.Contains(out.String(), "served to /page via 1.1 sockshaper") {
		t.Errorf("the page did not come through the proxy: %s\nchromium's log:\n%s", out.String(), errs.String())
	}
	var challenged, served bool
	for _, l := range d.sessionsTo(web.Listener.Addr().String()) {
		challenged = challenged || l["result"] == "auth_required" && l["close_reason"] == "auth_required"
		served = served || l["front"] == "http" && l["user"] == "alice" && l["group"] == "staff" &&
			l["command"] == "request" && l["result"] == "ok"
	}
	if !challenged || !served {
		t.Errorf("accounting lines %v: want a 407 challenge, then front=http user=alice group=staff result=ok",
			d.sessionsTo(web.Listener.Addr().String()))
	}
	d.waitMetricAbove(`sockshaper_auth_attempts_total{result="kerberos_ok"}`, 0)
}
