package proxy

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool finds a command a test needs; in CI a missing one fails the test.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: install the Debian package %s (scripts/test.sh does)", name, debianPackage)
	}
	t.Skipf("%s not found: apt-get install %s", name, debianPackage)
	return ""
}

// pacRunner evaluates a PAC file with node's vm module, with the PAC helper
// functions browsers provide (those the generated file uses), and prints
// FindProxyForURL's answer for each host given.
const pacRunner = `
const vm = require("vm");
const [pac, hosts] = JSON.parse(require("fs").readFileSync(0, "utf8"));
function ip4(a) { return a.split(".").reduce((n, o) => n * 256 + Number(o), 0); }
const sandbox = {
  dnsDomainIs: (h, d) => h.length >= d.length && h.substring(h.length - d.length) == d,
  isInNet: (h, net, mask) => {
    if (!/^[0-9.]+$/.test(h)) throw new Error("isInNet on a name: a DNS lookup per URL");
    return ((ip4(h) & ip4(mask)) >>> 0) == ((ip4(net) & ip4(mask)) >>> 0);
  },
  isInNetEx: (h, cidr) => h.startsWith(cidr.split("::")[0] + ":"),
};
vm.createContext(sandbox);
vm.runInContext(pac, sandbox, { filename: "proxy.pac" });
const out = {};
for (const h of hosts) out[h] = sandbox.FindProxyForURL("http://" + h + "/", h);
console.log(JSON.stringify(out));
`

func evalPAC(t *testing.T, node, pac string, hosts []string) map[string]string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "pac.js")
	if err := os.WriteFile(script, []byte(pacRunner), 0o600); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal([]any{pac, hosts})
	cmd := exec.Command(node, script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s\nPAC:\n%s", err, out, pac)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	return got
}

func fetchPAC(t *testing.T, proxyAddr, path, host string) string {
	t.Helper()
	resp := roundTrip(t, proxyAddr, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ns-proxy-autoconfig" {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(body)
}

func TestPACSendsEverythingToTheProxyByDefault(t *testing.T) {
	node := requireTool(t, "node", "nodejs")
	h := newHarness(t, "")
	_, port := splitHostPort(t, h.addr)
	for _, tc := range []struct{ path, host, want string }{
		{"/proxy.pac", "proxy.campus.example:3128", "PROXY proxy.campus.example:3128"},
		{"/wpad.dat?x=1", "wpad.campus.example", "PROXY wpad.campus.example:" + itoa(port)},
		{"/proxy.pac", "evil\";alert(1);\"", "PROXY 127.0.0.1:" + itoa(port)},
	} {
		pac := fetchPAC(t, h.addr, tc.path, tc.host)
		got := evalPAC(t, node, pac, []string{"example.com", "teams.microsoft.com", "10.0.0.1"})
		for host, answer := range got {
			if answer != tc.want {
				t.Errorf("Host %q: FindProxyForURL(%s) = %q, want %q", tc.host, host, answer, tc.want)
			}
		}
	}
}

func TestPACSendsChosenAppsToTheProxy(t *testing.T) {
	node := requireTool(t, "node", "nodejs")
	h := newHarness(t, `
apps:
  skype: {domains: [skype.com, teams.microsoft.com], networks: [52.112.0.0/14, "2603:1063::/38"]}
  video: {domains: [video.example]}
http: {pac: {proxy_host: proxy.campus.example, apps: [skype]}}
`)
	pac := fetchPAC(t, h.addr, "/proxy.pac", "ignored:8080")
	proxy := "PROXY proxy.campus.example:8080"
	want := map[string]string{
		"teams.microsoft.com": proxy, "a.b.teams.microsoft.com": proxy, "SKYPE.COM": proxy,
		"52.113.1.2": proxy, "52.116.0.1": "DIRECT", "notskype.com": "DIRECT",
		"video.example": "DIRECT", "example.com": "DIRECT", "microsoft.com": "DIRECT",
	}
	hosts := make([]string, 0, len(want))
	for h := range want {
		hosts = append(hosts, h)
	}
	for host, answer := range evalPAC(t, node, pac, hosts) {
		if answer != want[host] {
			t.Errorf("FindProxyForURL(%s) = %q, want %q", host, answer, want[host])
		}
	}
}

func itoa(n uint16) string {
	b, _ := json.Marshal(n)
	return string(b)
}
