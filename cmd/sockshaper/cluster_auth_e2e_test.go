package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/cluster"
	"github.com/sockshaper/sockshaper/internal/redistest"
)

// guideRedisACL returns the redis.conf of docs/deployment.md's Redis section
// and the password it gives the ACL user sockshaper.
func guideRedisACL(t *testing.T) (conf, password string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)\n## Redis\n.*?```conf\n(.*?)```").FindSubmatch(doc)
	if block == nil {
		t.Fatal("docs/deployment.md lost its redis.conf block under ## Redis")
	}
	conf = regexp.MustCompile(`(?m)^\s+`).ReplaceAllString(string(block[1]), "") // the block is indented in a list
	pw := regexp.MustCompile(`(?m)^user sockshaper on >(\S+)`).FindStringSubmatch(conf)
	if pw == nil {
		t.Fatal("the guide's redis.conf has no ACL user sockshaper with a password")
	}
	return conf, pw[1]
}

// startWithSecret starts an instance of the cluster at url whose
// redis_password_file holds secret.
func startWithSecret(t *testing.T, url, name, secret string, cap int) *process {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "redis.secret"), secret+"\n")
	cfg := strings.Replace(capConfig(url, name, cap), "cluster: {", `cluster: {redis_password_file: redis.secret, `, 1)
	return startDaemonAt(t, dir, nil, cfg, usersFile())
}

// TestRedisGuideACL: two instances share a user's cap and limit through a
// Redis configured as docs/deployment.md says (the default user off, an ACL
// user allowed sockshaper's commands on its keys only), logging in as that
// user with the password in cluster.redis_password_file: no exchange fails,
// every session slot is decided by Redis, nothing is refused by the ACL. An
// instance with a wrong password serves alone and logs the outage, and no
// password shows in any log. A password file that cannot be read stops the
// daemon at start, naming the key.
func TestRedisGuideACL(t *testing.T) {
	conf, password := guideRedisACL(t)
	rdb := redistest.StartConfig(t, conf)
	url := fmt.Sprintf("redis://sockshaper@127.0.0.1:%d/0", rdb.Port)
	a := startWithSecret(t, url, "shaper-a", password, 4)
	b := startWithSecret(t, url, "shaper-b", password, 4)
	a.waitMetric(`sockshaper_cluster_peers`, 2)
	b.waitMetric(`sockshaper_cluster_peers`, 2)
	src := sourceServer(t)
	got := burst(t, 6, src, a.listen, b.listen)
	if len(got) != 4 {
		t.Errorf("%d of 6 sessions admitted through the guide's ACL, want the cap of 4", len(got))
	}
	var dl downloads
	for _, c := range got {
		dl.add(c)
	}
	dl.rate(2 * time.Second) // the usage script runs once a second
	closeAll(got)
	for _, d := range []*process{a, b} {
		d.waitMetric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`, 0)
	}
	time.Sleep(cluster.Period * 2) // the released slots are written
	wrong := startWithSecret(t, url, "shaper-c", "not-"+password, 4)
	wrong.waitMetricAbove(`sockshaper_cluster_outages_total`, 0)
	if c, err := dialThroughFrom(t, "127.0.0.8", wrong.listen, "alice", echoServer(t)); err != nil {
		t.Errorf("the instance with a wrong Redis password does not serve: %v", err)
	} else {
		c.Close()
	}
	for _, d := range []*process{a, b} {
		for _, series := range []string{
			`sockshaper_cluster_exchange_duration_seconds_count{result="failed"}`,
			`sockshaper_cluster_session_reservations_total{result="local_reserved"}`,
			`sockshaper_cluster_session_reservations_total{result="local_refused"}`,
			`sockshaper_cluster_bad_reports_total{reason="usage"}`,
		} {
			if n := d.metric(series); n != 0 {
				t.Errorf("%s = %v through the guide's ACL, want 0", series, n)
			}
		}
	}
	for _, d := range []*process{a, b, wrong} {
		if strings.Contains(d.logText(), password) {
			t.Error("a Redis password shows in the log")
		}
		if strings.Contains(d.logText(), "NOPERM") {
			t.Errorf("the guide's ACL refused a command:\n%s", d.logText())
		}
	}

	dir := t.TempDir()
	cfg := strings.Replace(capConfig(url, "shaper-d", 4), "cluster: {", `cluster: {redis_password_file: missing.secret, `, 1)
	writeFile(t, filepath.Join(dir, "sockshaper.yaml"), cfg)
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	out, code := runCommand(t, "", "-config", filepath.Join(dir, "sockshaper.yaml"))
	if code == 0 || !strings.Contains(out, "cluster.redis_password_file") {
		t.Errorf("a missing redis_password_file: exit %d, %q; want a failure naming the key", code, out)
	}
}
