package kdctest

import (
	"os"
	"strings"
	"testing"
)

// TestKDC checks the fixture with the MIT tools: tickets for a user of the realm,
// a cross-realm ticket for a user of the other realm, a keytab whose key version
// goes up with each export, and a stopped KDC that gives no tickets.
func TestKDC(t *testing.T) {
	k := Start(t)
	cc := k.Kinit("alice@" + Realm)
	if out := k.Kvno(cc, HTTPService); !strings.Contains(out, "kvno = 1") {
		t.Errorf("kvno: %s", out)
	}
	eve := k.Kinit("eve@" + OtherRealm)
	if out := k.Kvno(eve, HTTPService+"@"+Realm); !strings.Contains(out, "kvno = 1") {
		t.Errorf("cross-realm kvno: %s", out)
	}
	kt := k.Dir + "/http.keytab"
	k.Keytab(kt, HTTPService)
	k.Keytab(kt, HTTPService)
	if st, err := os.Stat(kt); err != nil || st.Size() == 0 {
		t.Fatalf("keytab: %v", err)
	}
	if out := k.Kvno(k.Kinit("bob@"+Realm), HTTPService); !strings.Contains(out, "kvno = 3") {
		t.Errorf("after two exports: %s", out)
	}
	k.Stop()
	if out, err := k.runErr([]byte(Password("bob")+"\n"), k.NewCCache(), "kinit", "bob"); err == nil {
		t.Errorf("kinit with the KDC stopped: %s", out)
	}
	k.Restart()
	k.Kvno(cc, OtherService)
}
