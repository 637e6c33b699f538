package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/proctest"
	"github.com/sockshaper/sockshaper/internal/testca"
	"github.com/sockshaper/sockshaper/metrics"
)

// observedConfig puts 127.0.0.3 in the skype class so the test makes skype and
// other traffic from local targets, and shapes downloads so throttling shows;
// per-user series and a quota feed the usage panels.
const observedConfig = baseConfig + `
state_dir: state
metrics: {per_user: true}
shaping:
  default_group: students
  groups:
    students: {upload: 0, download: 4MiB, quota: {daily: 1GiB, over_rate: 1Mbit}}
apps:
  skype: {networks: [127.0.0.3/32]}
`

// trafficForDashboards makes every kind of event a dashboard panel shows, and
// returns sessions it keeps open so the active gauges have something to show.
func trafficForDashboards(t *testing.T, d *process) []net.Conn {
	other := echoServer(t)
	skype := echoServerOn(t, "127.0.0.3:0")
	var open []net.Conn
	for _, target := range []string{other, skype} {
		c := dialThrough(t, d.listen, "alice", target)
		roundTrip(t, c, strings.Repeat("x", 1000))
		open = append(open, c)
	}
	src := sourceServer(t)
	downloadFor(t, d.listen, "alice", src, 2, time.Second) // throttled
	if c, err := socksDialer(t, d.listen, "mallory").Dial("tcp", other); err == nil {
		c.Close()
		t.Fatal("unknown user got through")
	}
	bind := exchangeRaw(t, d.listen, "alice", []byte{5, 2, 0, 1, 127, 0, 0, 1, 0, 80})
	if len(bind) < 2 || bind[1] != 2 {
		t.Fatalf("BIND reply %x, want 0x02", bind)
	}
	// The HTTP front: a forwarded request, and a tunnel kept open.
	if out, code := curlArgs(t, "-x", httpProxyURL(d.listen, "alice", password), helloServer(t).URL+"/http"); code != 0 {
		t.Fatalf("curl through the HTTP front: exit %d, %s", code, out)
	}
	// A request without credentials: the 407 challenge (auth_required).
	if out, code := curlArgs(t, "-x", "http://"+d.listen, helloServer(t).URL+"/challenged"); code != 0 || !strings.Contains(out, "authentication required") {
		t.Fatalf("curl without credentials: exit %d, %s", code, out)
	}
	tunnel := connectThrough(t, d.listen, "alice", other)
	roundTrip(t, tunnel, "through CONNECT")
	open = append(open, tunnel)
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	return open
}

func echoServerOn(t *testing.T, addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// exchangeRaw logs in as user and sends one raw request; it returns the reply.
func exchangeRaw(t *testing.T, proxyAddr, user string, request []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	login := append([]byte{5, 1, 2, 1, byte(len(user))}, user...)
	login = append(append(login, byte(len(password))), password...)
	c.Write(append(login, request...))
	head := make([]byte, 4)
	if _, err := io.ReadFull(c, head); err != nil || head[3] != 0 {
		t.Fatalf("login: %x, %v", head, err)
	}
	reply, _ := io.ReadAll(c)
	return reply
}

func TestPromtoolChecksLiveMetrics(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	d := startDaemon(t, observedConfig, usersFile())
	for _, c := range trafficForDashboards(t, d) {
		defer c.Close()
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(httpGet(t, "http://"+d.admin+"/metrics"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestDashboardQueriesOnRealPrometheus runs a real Prometheus server scraping the
// real daemon every second and evaluates every query of every dashboard panel.
func TestDashboardQueriesOnRealPrometheus(t *testing.T) {
	promBin := requireTool(t, "prometheus", "prometheus")
	// With the HTTPS listener, whose panels (certificate expiry) have series
	// only when it is configured.
	dir := t.TempDir()
	testca.New(t, "ca").Server(t, 24*time.Hour, "proxy.test").Write(t, dir, "proxy")
	d := startDaemonAt(t, dir, nil, observedConfig+"tls: {listen: 127.0.0.1:0, cert_file: proxy.pem, key_file: proxy.key}\n", usersFile())
	prom := startPrometheus(t, promBin, d.admin)
	for _, c := range trafficForDashboards(t, d) {
		defer c.Close()
	}
	queries, err := metrics.DashboardQueries(filepath.Join("..", "..", "configs", "grafana", "dashboards", "sockshaper.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Let two more scrapes land after the traffic, so rate() has samples to use.
	time.Sleep(2500 * time.Millisecond)
	waitQuery(t, prom, `sockshaper_config_reloads_total{result="success"} == 1`)
	for _, q := range queries {
		if n := queryResults(t, prom, q); n == 0 {
			t.Errorf("dashboard query returns no series: %s", q)
		}
	}
	// The skype session is still open: its bytes must show while it lives.
	waitQuery(t, prom, `sockshaper_transferred_bytes_total{app="skype",direction="upload",transport="tcp"} == 1000`)
	waitQuery(t, prom, `sockshaper_sessions_active{app="skype",command="connect",front="socks5"} == 1`)
	// Both fronts show apart.
	waitQuery(t, prom, `sockshaper_sessions_active{app="other",command="connect",front="http"} == 1`)
	waitQuery(t, prom, `sockshaper_sessions_total{app="other",command="request",front="http",result="ok"} == 1`)
	waitQuery(t, prom, `sum by (front) (sockshaper_sessions_total{front="socks5"}) > 0`)
}

func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: sockshaper\n    static_configs: [{targets: [%q]}]\n", target)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	proctest.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	waitQuery(t, addr, `up{job="sockshaper"} == 1`)
	return addr
}

// waitQuery polls until q returns at least one series.
func waitQuery(t *testing.T, prom, q string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for queryResultsQuiet(prom, q) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never answered %s", q)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func queryResults(t *testing.T, prom, q string) int {
	t.Helper()
	n, err := query(prom, q)
	if err != nil {
		t.Errorf("query %s: %v", q, err)
	}
	return n
}

func queryResultsQuiet(prom, q string) int {
	n, _ := query(prom, q)
	return n
}

// query evaluates an instant query and returns how many series it produced.
func query(prom, q string) (int, error) {
	resp, err := httpClient.Get("http://" + prom + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.Status, r.Error)
	}
	return len(r.Data.Result), nil
}
