package metrics

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// newAdminServer serves NewAdminHandler on a real listener on 127.0.0.1:0.
func newAdminServer(t *testing.T, g prometheus.Gatherer, ready Readiness, pprof bool, logger *slog.Logger) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewAdminHandler(g, ready, pprof, logger))
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path from srv and returns the status code and body.
func get(t *testing.T, srv *httptest.Server, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(body)
}

func TestAdminHealthAndReady(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := newAdminServer(t, prometheus.NewRegistry(), Ready(ready.Load), false, nil)

	if code, body := get(t, srv, http.MethodGet, "/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\"", code, body)
	}
	if code, body := get(t, srv, http.MethodGet, "/readyz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/readyz while ready = %d %q, want 200 \"ok\"", code, body)
	}
	ready.Store(false) // as after SIGTERM
	if code, _ := get(t, srv, http.MethodGet, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", code)
	}
	if code, _ := get(t, srv, http.MethodGet, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200", code)
	}
}

// TestAdminReadyNotes: the notes of a Readiness follow the status line of
// /readyz, a line each, whether ready or not; without notes the body is the
// status alone, as health checks expect.
func TestAdminReadyNotes(t *testing.T) {
	var ready atomic.Bool
	var notes atomic.Pointer[[]string]
	notes.Store(&[]string{})
	srv := newAdminServer(t, prometheus.NewRegistry(), func() (bool, []string) { return ready.Load(), *notes.Load() }, false, nil)
	for _, tc := range []struct {
		ready bool
		notes []string
		code  int
		body  string
	}{
		{true, nil, http.StatusOK, "ok"},
		{true, []string{"usage state: writes failing since 2026-12-06T21:00:00Z"}, http.StatusOK, "ok\nusage state: writes failing since 2026-12-06T21:00:00Z"},
		{false, []string{"a", "b"}, http.StatusServiceUnavailable, "not ready\na\nb"},
	} {
		ready.Store(tc.ready)
		notes.Store(&tc.notes)
		if code, body := get(t, srv, http.MethodGet, "/readyz"); code != tc.code || body != tc.body {
			t.Errorf("/readyz ready %v notes %q = %d %q, want %d %q", tc.ready, tc.notes, code, body, tc.code, tc.body)
		}
	}
}

func TestAdminNilReadyIsReady(t *testing.T) {
	srv := newAdminServer(t, prometheus.NewRegistry(), nil, false, nil)
	if code, _ := get(t, srv, http.MethodGet, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with nil ready = %d, want 200", code)
	}
}

func TestAdminRoutes(t *testing.T) {
	srv := newAdminServer(t, prometheus.NewRegistry(), nil, false, nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/metricsx", http.StatusNotFound},
		{http.MethodGet, "/debug/vars", http.StatusNotFound},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodHead, "/metrics", http.StatusOK},
	} {
		if code, _ := get(t, srv, tc.method, tc.path); code != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}
}

func TestAdminPprofOnlyWhenOn(t *testing.T) {
	off := newAdminServer(t, prometheus.NewRegistry(), nil, false, nil)
	on := newAdminServer(t, prometheus.NewRegistry(), nil, true, nil)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
		if code, _ := get(t, off, http.MethodGet, path); code != http.StatusNotFound {
			t.Errorf("pprof off: %s = %d, want 404", path, code)
		}
		if code, _ := get(t, on, http.MethodGet, path); code != http.StatusOK {
			t.Errorf("pprof on: %s = %d, want 200", path, code)
		}
	}
}

func TestAdminMetricsLogsGatherErrors(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	failing := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return nil, errors.New("collector exploded")
	})
	reg := prometheus.NewRegistry()
	New(reg, Options{})
	srv := newAdminServer(t, prometheus.Gatherers{reg, failing}, nil, false, logger)

	code, body := get(t, srv, http.MethodGet, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "sockshaper_users_active 0") {
		t.Errorf("/metrics with a failing gatherer = %d, want 200 with the other metrics", code)
	}
	if !strings.Contains(logs.String(), "collector exploded") {
		t.Errorf("gather error not logged; logs: %q", logs.String())
	}
}

// promtool returns the path of promtool. Without it the test is skipped, except in
// CI (CI set to anything), where a missing promtool fails the test: the check must
// run there.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not found in CI (install the Debian package prometheus): %v", err)
		}
		t.Skipf("promtool not found: %v", err)
	}
	return path
}

func TestPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	m, reg := newTestMetrics(t, Options{PerUser: true, PerUserMaxUsers: 1, Apps: []string{"skype", "other"}, QuotaUsage: quotaUsage})
	exercise(m)
	m.Transferred("", "other", DirectionUpload, TransportTCP, 10)
	srv := newAdminServer(t, reg, nil, false, nil)
	code, body := get(t, srv, http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, d := range designTable() {
		if !strings.Contains(body, "# TYPE "+d.name+" ") {
			t.Errorf("/metrics lacks %s", d.name)
		}
	}

	cmd := exec.CommandContext(t.Context(), bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestAdminExtraRoutes(t *testing.T) {
	users := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"users":[]}`) })
	srv := httptest.NewServer(NewAdminHandler(prometheus.NewRegistry(), nil, false, nil,
		Route{Pattern: "GET /api/v1/users", Handler: users}))
	t.Cleanup(srv.Close)
	if code, body := get(t, srv, http.MethodGet, "/api/v1/users"); code != http.StatusOK || body != `{"users":[]}` {
		t.Errorf("GET /api/v1/users = %d %q", code, body)
	}
	if code, _ := get(t, srv, http.MethodPost, "/api/v1/users"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/users = %d, want 405", code)
	}
	if code, _ := get(t, srv, http.MethodGet, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with an extra route = %d", code)
	}
}
