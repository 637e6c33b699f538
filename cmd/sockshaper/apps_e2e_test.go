package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// teamsNetworks are the networks of endpoint sets 11 and 12 (version
// 2025013000), as the recorded response yields them.
func teamsNetworks() []string {
	return []string{"52.112.0.0/14", "52.122.0.0/15", "52.238.119.141/32", "52.244.160.207/32",
		"2603:1027::/48", "2603:1037::/48", "2603:1047::/48", "2603:1057::/48", "2603:1063::/38",
		"2620:1ec:6::/48", "2620:1ec:40::/42"}
}

// TestUpdateM365 runs the binary against a local stand-in of the endpoints web
// service serving the recorded response: the file holds the Teams sets' rules
// and the version the service reports, the hostile values are named on standard
// error, both requests carry one random GUID, and a second run with the same
// version asks only for the version and renews the generation time.
func TestUpdateM365(t *testing.T) {
	srv := newM365Server(t)
	out := filepath.Join(t.TempDir(), "m365-skype.yaml")
	start := time.Now().Add(-time.Second)
	stdout, stderr, code := runSplit(t, "apps", "update-m365", "-url", srv.URL, "-out", out)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	f, err := configs.LoadAppsFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Source
	if s.Version != "2025013000" || s.Instance != "Worldwide" || s.URL != srv.URL+"/endpoints/Worldwide?ServiceAreas=Skype" ||
		!reflect.DeepEqual(s.Categories, []string{"Optimize", "Allow"}) || s.GeneratedTime.Before(start.Truncate(time.Second)) {
		t.Errorf("source %+v", s)
	}
	if len(f.Apps) != 1 || f.Apps[0].Name != "skype" {
		t.Fatalf("classes %+v", f.Apps)
	}
	c := f.Apps[0]
	if want := []string{"lync.com", "teams.cloud.microsoft", "teams.microsoft.com"}; !reflect.DeepEqual(c.Domains, want) {
		t.Errorf("domains %v, want %v", c.Domains, want)
	}
	if !reflect.DeepEqual(c.Networks, teamsNetworks()) {
		t.Errorf("networks %v\nwant %v", c.Networks, teamsNetworks())
	}
	if got := portStrings(c.Ports); !reflect.DeepEqual(got, []string{"tcp/80", "tcp/443", "udp/3478-3481"}) {
		t.Errorf("ports %v", got)
	}
	for _, want := range []string{`warning: endpoint set 9001: "teams.microsoft.com/path" skipped: has a scheme or path`,
		`warning: endpoint set 9001: "0.0.0.0/0" skipped: broader than /8`, "more values skipped"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "class skype, 3 names, 11 networks, 3 port ranges") || !strings.Contains(stdout, "version 2025013000") {
		t.Errorf("stdout: %s", stdout)
	}
	reqs := srv.takeRequests()
	if len(reqs) != 2 || reqs[0].Path != "/version/Worldwide" || reqs[1].Path != "/endpoints/Worldwide" ||
		reqs[1].Query().Get("ServiceAreas") != "Skype" {
		t.Fatalf("requests %v", reqs)
	}
	if id := reqs[0].Query().Get("ClientRequestId"); !guid.MatchString(id) || reqs[1].Query().Get("ClientRequestId") != id {
		t.Errorf("ClientRequestId %q and %q: want one random GUID", id, reqs[1].Query().Get("ClientRequestId"))
	}

	// Same version: no endpoints request; the file is the same but for the time.
	before := readTestdata(t, out)
	time.Sleep(1100 * time.Millisecond) // the generation time has seconds
	stdout, _, code = runSplit(t, "apps", "update-m365", "-url", srv.URL, "-out", out)
	if reqs := srv.takeRequests(); code != 0 || len(reqs) != 1 || reqs[0].Path != "/version/Worldwide" || !strings.Contains(stdout, "is current") {
		t.Fatalf("second run: exit %d, %s, requests %v", code, stdout, reqs)
	}
	after := readTestdata(t, out)
	if bytes.Equal(before, after) || !bytes.Equal(dropLine(before, "generated:"), dropLine(after, "generated:")) {
		t.Errorf("second run rewrote\n%s\nas\n%s", before, after)
	}

	// A new version: fetched again, and the change is named.
	srv.set([]byte(`{"instance":"Worldwide","latest":"2025013001"}`), withTeamsNetwork(t, srv.endpoints, "13.107.64.0/18"))
	stdout, _, code = runSplit(t, "apps", "update-m365", "-url", srv.URL, "-out", out)
	if code != 0 || !strings.Contains(stdout, "changes from version 2025013000:\n  + network 13.107.64.0/18") {
		t.Errorf("new version: exit %d, %s", code, stdout)
	}
}

func dropLine(data []byte, prefix string) []byte {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), prefix) {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// TestUpdateM365KeepsOldFile: whatever goes wrong, the run exits 1 naming the
// problem, the old file is byte for byte what it was, and no temporary file
// is left beside it.
func TestUpdateM365KeepsOldFile(t *testing.T) {
	huge := append([]byte("["), bytes.Repeat([]byte(" "), 9<<20)...)
	onlyDefault := []byte(`[{"id":127,"serviceArea":"Skype","urls":["*.skype.com"],"tcpPorts":"443,80","category":"Default","required":true}]`)
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		extra   []string
		want    string
	}{
		{"server error", status(http.StatusInternalServerError), nil, "HTTP 500 Internal Server Error"},
		{"rate limited", onPath("/endpoints/Worldwide", status(http.StatusTooManyRequests)), nil, "HTTP 429 Too Many Requests"},
		{"bad JSON", onPath("/endpoints/Worldwide", body([]byte(`[{"id":11,"ips":["52.112.0.0/14"]`))), nil, "endpoints: unexpected EOF"},
		{"wrong type", onPath("/endpoints/Worldwide", body([]byte(`[{"id":"eleven"}]`))), nil, "endpoints: json: cannot unmarshal string"},
		{"oversize", onPath("/endpoints/Worldwide", body(huge)), nil, "the response is larger than 8 MiB"},
		{"only Default sets", onPath("/endpoints/Worldwide", body(onlyDefault)), nil, "no usable name or network in the Skype sets"},
		{"bad version", body([]byte(`{"instance":"Worldwide","latest":"latest"}`)), nil, `version: latest "latest" is not a version of ten digits`},
		{"other instance", body([]byte(`{"instance":"China","latest":"2025013000"}`)), nil, `version: the answer is for instance "China", not Worldwide`},
		{"timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, []string{"-timeout", "1s"},
			"no complete answer within -timeout 1s"},
		{"slow body", onPath("/endpoints/Worldwide", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("[")) // headers and a first byte, then nothing
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}), []string{"-timeout", "1s"}, "no complete answer within -timeout 1s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newM365Server(t)
			srv.setHandler(tt.handler)
			dir := t.TempDir()
			out := filepath.Join(dir, "m365-skype.yaml")
			old := []byte("# the previous list\n")
			writeFile(t, out, string(old))
			begin := time.Now()
			stdout, stderr, code := runSplit(t, append([]string{"apps", "update-m365", "-url", srv.URL, "-out", out}, tt.extra...)...)
			if code != 1 || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, out+" left unchanged") || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, tt.want)
			}
			if time.Since(begin) > 15*time.Second {
				t.Errorf("took %v", time.Since(begin))
			}
			if got := readTestdata(t, out); !bytes.Equal(got, old) {
				t.Errorf("old file changed to %q", got)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("files left: %v", entries)
			}
		})
	}
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "status\r\nInjected: header", code) }
}

func body(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.Write(b) }
}

// onPath answers path with h and everything else as the service would.
func onPath(path string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case path:
			h(w, r)
		case "/version/Worldwide":
			w.Write([]byte(`{"instance":"Worldwide","latest":"2025013000"}`))
		default:
			http.NotFound(w, r)
		}
	}
}

func TestUpdateM365Invocations(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.yaml")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"apps", "update-m365"}, 2, "-out FILE is required"},
		{[]string{"apps", "update-m365", "-out", out, "-instance", "Germany"}, 2, `-instance: unknown instance "Germany"`},
		{[]string{"apps", "update-m365", "-out", out, "-categories", "Optimize,Default"}, 2, `-categories: category "Default"`},
		{[]string{"apps", "update-m365", "-out", out, "-class", "Teams"}, 2, "-class: a class name is lowercase"},
		{[]string{"apps", "update-m365", "-out", out, "-url", "ftp://example.com"}, 1, "want https://host"},
		{[]string{"apps", "update-m365", "-out", out, "-url", "https://user:pw@example.com"}, 1, "want no user, query or fragment"},
		{[]string{"apps"}, 2, "sockshaper apps: name a sub-command: update-m365"},
		{[]string{"apps", "nosuch"}, 2, "name a sub-command: update-m365"},
		{[]string{"apps", "update-m365", "-h"}, 0, "-categories CATEGORIES"},
		{[]string{"help", "apps", "update-m365"}, 0, "usage: sockshaper apps update-m365 [flags]"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runSplit(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed invocation wrote the file")
	}
}

// TestUpdateM365NeverWritesPartialFile runs the binary under a file size limit
// (prlimit --fsize) smaller than the new file, so that writing it fails half
// way: the old file must stay whole, not be left truncated or half new, and
// the temporary file must go.
func TestUpdateM365NeverWritesPartialFile(t *testing.T) {
	prlimit := requireTool(t, "prlimit", "util-linux")
	srv := newM365Server(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "m365-skype.yaml")
	old := "# the previous list\n" + strings.Repeat("# padding\n", 10)
	writeFile(t, out, old)
	cmd := exec.Command(prlimit, "--fsize=600", binary, "apps", "update-m365", "-url", srv.URL, "-out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); !ok || cmd.ProcessState.ExitCode() != 1 ||
		!strings.Contains(stderr.String(), "file too large") || !strings.Contains(stderr.String(), out+" left unchanged") {
		t.Errorf("exit %v, stderr %s; want 1, file too large", err, &stderr)
	}
	if got := string(readTestdata(t, out)); got != old {
		t.Errorf("old file is now %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left: %v", entries)
	}
}
