package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noAuthConfig is a loopback-only proxy without a users file.
const noAuthConfig = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: ""}
access:
  client_networks: [127.0.0.0/8]
  deny_destinations: [private, link-local, metadata, 127.0.0.2/32]
timeouts: {handshake: 5s, dial: 2s, idle: 30s, drain: 2s}
`

// chromiumFlags start a headless Chromium that stays off the network (this
// machine has none) with a fresh profile.
func chromiumFlags(t *testing.T) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
}

// dumpDOM runs Chromium with flags on url and returns the DOM it printed.
func dumpDOM(t *testing.T, chromium, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(append(chromiumFlags(t), flags...), "--dump-dom", url)
	cmd := exec.CommandContext(ctx, chromium, args...)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errs.String())
	}
	t.Logf("chromium --dump-dom %s printed: %s", url, strings.TrimSpace(out.String()))
	return out.String()
}

// sessionTo returns the accounting lines of sessions to destinations ending in
// suffix (Chromium also tries its own hosts, which do not resolve here).
func (d *process) sessionsTo(suffix string) []map[string]any {
	var out []map[string]any
	for _, r := range d.records("session") {
		if dst, _ := r["destination"].(string); strings.HasSuffix(dst, suffix) {
			out = append(out, r)
		}
	}
	return out
}

func TestChromiumThroughHTTPFront(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	d := startDaemon(t, noAuthConfig, "")
	web, secure := startWebServer(t, false), startWebServer(t, true)
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())

	dom := dumpDOM(t, chromium, web.URL+"/page", "--proxy-server=http://"+d.listen, "--proxy-bypass-list=<-loopback>")
	if !strings.Contains(dom, "served to /page via 1.1 sockshaper") {
		t.Errorf("--proxy-server: the page did not come through the proxy: %s", dom)
	}
	dom = dumpDOM(t, chromium, secure.URL+"/page", "--proxy-server=http://"+d.listen, "--proxy-bypass-list=<-loopback>",
		"--ignore-certificate-errors")
	if !strings.Contains(dom, "served to /page via <") {
		t.Errorf("--proxy-server, https (CONNECT): %s", dom)
	}
	// Chromium never asks a PAC file about loopback URLs, so the page is
	// fetched by a name of this machine that resolves to 127.0.0.1.
	name := loopbackName(t)
	dom = dumpDOM(t, chromium, "http://"+net.JoinHostPort(name, port)+"/page", "--proxy-pac-url=http://"+d.listen+"/proxy.pac")
	if !strings.Contains(dom, "served to /page via 1.1 sockshaper") {
		t.Errorf("--proxy-pac-url: the page did not come through the proxy: %s", dom)
	}
	checkLines := func(suffix, command string, want int) {
		t.Helper()
		lines := d.sessionsTo(suffix)
		ok := 0
		for _, l := range lines {
			if l["front"] == "http" && l["command"] == command && l["result"] == "ok" && l["user"] == "-" {
				ok++
			}
		}
		if ok < want {
			t.Errorf("accounting lines to %s: %v; want %d with front=http command=%s result=ok", suffix, lines, want, command)
		}
	}
	checkLines("127.0.0.1:"+port, "request", 1)
	checkLines(secure.Listener.Addr().String(), "connect", 1)
	checkLines(net.JoinHostPort(name, port), "request", 1)
	if n := len(d.sessionsTo("/proxy.pac")); n < 1 {
		t.Errorf("the PAC file was fetched %d times", n)
	}
}

// loopbackName returns a name of this machine (its host name, or another name
// /etc/hosts gives a loopback address) that resolves to 127.0.0.1 only, and that
// Chromium does not take for localhost.
func loopbackName(t *testing.T) string {
	var names []string
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	if hosts, err := os.ReadFile("/etc/hosts"); err == nil {
		for _, line := range strings.Split(string(hosts), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[0], "127.") {
				names = append(names, f[1:]...)
			}
		}
	}
	for _, n := range names {
		if strings.Contains(n, "localhost") {
			continue
		}
		if addrs, err := net.LookupHost(n); err == nil && len(addrs) > 0 && allIPv4Loopback(addrs) {
			return n
		}
	}
	t.Fatalf("no name of this machine resolves to 127.0.0.1 only (tried %v); the PAC test needs one", names)
	return ""
}

func allIPv4Loopback(addrs []string) bool {
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1") {
			return false
		}
	}
	return true
}

// puppeteerScript opens a page through an HTTP proxy that asks for a login,
// answering the challenge with page.authenticate, and prints the status and the
// text of #msg.
const puppeteerScript = `
const puppeteer = require(process.env.PUPPETEER);
const [chromium, proxy, url, user, pass, dataDir] = process.argv.slice(2);
(async () => {
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, userDataDir: dataDir,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--proxy-server=" + proxy, "--proxy-bypass-list=<-loopback>"],
  });
  try {
    const page = await browser.newPage();
    await page.authenticate({ username: user, password: pass });
    const resp = await page.goto(url, { waitUntil: "load", timeout: 30000 });
    console.log(JSON.stringify({ status: resp.status(), text: await page.$eval("#msg", e => e.textContent) }));
  } finally {
    await browser.close();
  }
})().catch(e => { console.error(e); process.exit(1); });
`

// puppeteerVersion is the puppeteer-core that drives the system Chromium
// (scripts/test.sh installs it; the test does when it is missing).
const puppeteerVersion = "24.43.1"

// puppeteerCore returns the path of the puppeteer-core module, installing it
// with npm into the user's cache when it is missing.
func puppeteerCore(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SOCKSHAPER_NODE_PREFIX")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(cache, "sockshaper-test")
	}
	mod := filepath.Join(dir, "node_modules", "puppeteer-core")
	if _, err := os.Stat(filepath.Join(mod, "package.json")); err == nil {
		return mod
	}
	npm := requireTool(t, "npm", "npm")
	cmd := exec.Command(npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "puppeteer-core@"+puppeteerVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install puppeteer-core: %v\n%s", err, out)
	}
	return mod
}

func TestChromiumLogsInThroughHTTPFront(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	node := requireTool(t, "node", "nodejs")
	mod := puppeteerCore(t)
	d := startDaemon(t, strings.Replace(baseConfig, "handshake: 1s", "handshake: 5s", 1), usersFile())
	web := startWebServer(t, false)
	script := filepath.Join(t.TempDir(), "login.js")
	writeFile(t, script, puppeteerScript)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, chromium, "http://"+d.listen, web.URL+"/page", "alice", password, t.TempDir())
	cmd.Env = append(os.Environ(), "PUPPETEER="+mod)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("puppeteer: %v\n%s%s", err, out.String(), errs.String())
	}
	t.Logf("puppeteer printed: %s", strings.TrimSpace(out.String()))
	var got struct {
		Status int
		Text   string
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Status != 200 || got.Text != "served to /page via 1.1 sockshaper" {
		t.Fatalf("page through the proxy with a login: %+v, %v", got, err)
	}
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	var challenged, served, failed bool
	for _, l := range d.sessionsTo("127.0.0.1:" + port) {
		challenged = challenged || l["front"] == "http" && l["result"] == "auth_required" && l["close_reason"] == "auth_required"
		served = served || l["front"] == "http" && l["user"] == "alice" && l["command"] == "request" && l["result"] == "ok"
		failed = failed || l["result"] == "auth_failed"
	}
	if !challenged || !served || failed {
		t.Errorf("accounting lines %v: want a 407 challenge (auth_required), then front=http user=alice result=ok, and no auth_failed",
			d.sessionsTo(port))
	}
	d.waitMetricAbove(`sockshaper_auth_attempts_total{result="ok"}`, 0) // the page, and its favicon
}
