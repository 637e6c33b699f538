package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testPassword is the password of every user in the test users file.
const testPassword = "correct horse"

// testUsers is hashed once at bcrypt's lowest cost: under the race detector the
// default cost takes seconds, longer than the tests' handshake deadline.
var testUsers = sync.OnceValue(func() string {
	var b strings.Builder
	for _, u := range []string{"alice", "bob"} {
		hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		b.WriteString(u + ":" + string(hash) + "\n")
	}
	return b.String()
})

// testConfig is the base config of proxy tests: authentication on, loopback
// destinations allowed except 127.0.0.2, which stands for a denied range.
const testConfig = `
listen: "127.0.0.1:0"
auth: {users_file: users.htpasswd}
access:
  client_networks: ["127.0.0.0/8"]
  deny_destinations: [private, link-local, metadata, 127.0.0.2/32]
timeouts: {handshake: 2s, dial: 2s, idle: 5s, drain: 2s}
`

// harness is one running proxy with its recorder and logs.
type harness struct {
	t    testing.TB
	srv  *Server
	addr string
	rec  *countingRecorder
	logs *syncBuffer
}

type harnessOption func(*Options)

// staticResolver resolves test names without DNS.
type staticResolver map[string][]netip.Addr

func (r staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func withResolver(r Resolver) harnessOption         { return func(o *Options) { o.Resolver = r } }
func withShaper(sh *shaping.Registry) harnessOption { return func(o *Options) { o.Shaper = sh } }

// newHarness starts a proxy on 127.0.0.1:0 with testConfig overridden by extra
// YAML (merged key by key) and stops it when the test ends.
func newHarness(t testing.TB, extra string, opts ...harnessOption) *harness {
	t.Helper()
	cfg := loadTestConfig(t, mergeYAML(t, testConfig, extra))
	return startHarness(t, cfg, loadUsers(t, cfg), opts...)
}

// loadUsers loads cfg's users file, or returns nil when it has none.
func loadUsers(t testing.TB, cfg *configs.Config) auth.Verifier {
	t.Helper()
	if cfg.Auth.UsersFile == "" {
		return nil
	}
	users, err := auth.LoadUsersFile(cfg.Auth.UsersFile)
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// startHarness starts a proxy on 127.0.0.1:0 applying cfg and checking passwords
// with users, and stops it when the test ends.
func startHarness(t testing.TB, cfg *configs.Config, users auth.Verifier, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, rec: newCountingRecorder(), logs: &syncBuffer{}}
	o := Options{Options: tunnel.Options{
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Recorder: h.rec,
		Resolver: staticResolver{"localhost.test": {netip.MustParseAddr("127.0.0.1")}, "denied.test": {netip.MustParseAddr("127.0.0.2")}},
	}}
	for _, opt := range opts {
		opt(&o)
	}
	h.srv = New(cfg, users, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		h.srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if t.Failed() {
			t.Logf("proxy log:\n%s", h.logs.String())
		}
	})
	return h
}

// loadTestConfig writes the YAML and the users file into a temp dir and loads it
// through the real config loader.
func loadTestConfig(t testing.TB, yaml string) *configs.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte(testUsers()), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sockshaper.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mergeYAML overlays override's mappings onto base's, key by key.
func mergeYAML(t testing.TB, base, override string) string {
	t.Helper()
	var b, o map[string]any
	if err := yaml.Unmarshal([]byte(base), &b); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(override), &o); err != nil {
		t.Fatal(err)
	}
	merge(b, o)
	out, err := yaml.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		sub, ok := v.(map[string]any)
		if cur, isMap := dst[k].(map[string]any); ok && isMap {
			merge(cur, sub)
			continue
		}
		dst[k] = v
	}
}

// waitFor polls cond for up to 5 s; states settle asynchronously after a close.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// countingRecorder records every call by its labels, for assertions.
type countingRecorder struct {
	mu     sync.Mutex
	counts map[string]int64
}

func newCountingRecorder() *countingRecorder {
	return &countingRecorder{counts: map[string]int64{}}
}

func (r *countingRecorder) add(key string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[key] += n
}

// get returns the count of a key such as "rejected connect other destination_denied".
func (r *countingRecorder) get(key string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// The session events are counted twice: by command, app and result ("closed
// connect other ok"), and by front too ("socks5: closed connect other ok").
func (r *countingRecorder) SessionOpened(f, c, a string) {
	r.addFront(f, "opened "+c+" "+a)
}
func (r *countingRecorder) SessionReclassified(f, c, from, to string) {
	r.addFront(f, "reclassified "+c+" "+from+" "+to)
}
func (r *countingRecorder) SessionClosed(f, c, a, res string, _ time.Duration) {
	r.addFront(f, fmt.Sprintf("closed %s %s %s", c, a, res))
}
func (r *countingRecorder) SessionRejected(f, c, a, res string) {
	r.addFront(f, fmt.Sprintf("rejected %s %s %s", c, a, res))
}

func (r *countingRecorder) addFront(front, key string) {
	r.add(key, 1)
	r.add(front+": "+key, 1)
}
func (r *countingRecorder) AuthAttempt(res string) { r.add("auth "+res, 1) }
func (r *countingRecorder) Transferred(_, a, d, tr string, n int64) {
	r.add(fmt.Sprintf("bytes %s %s %s", a, d, tr), n)
}
func (r *countingRecorder) Throttled(a, d string, w time.Duration) {
	r.add(fmt.Sprintf("throttled %s %s", a, d), int64(w))
}
func (r *countingRecorder) InboundRefused(reason string)       { r.add("inbound "+reason, 1) }
func (r *countingRecorder) Dialed(res string, _ time.Duration) { r.add("dial "+res, 1) }
func (r *countingRecorder) Handshake(time.Duration)            { r.add("handshake", 1) }
func (r *countingRecorder) SessionReset(reason string)         { r.add("reset "+reason, 1) }
func (r *countingRecorder) TLSHandshakeFailed(reason string)   { r.add("tls failed "+reason, 1) }
func (r *countingRecorder) HTTP2Conn(delta, streams int) {
	r.add("h2 conns", int64(delta))
	if delta < 0 {
		r.add("h2 streams", int64(streams))
	}
}
func (r *countingRecorder) HandshakeSlots(stage string, d int) {
	r.add("handshakes", int64(d))
	r.add("handshakes_"+stage, int64(d))
}
func (r *countingRecorder) HandshakeEvicted(scope string) { r.add("evicted "+scope, 1) }
func (r *countingRecorder) Budget(name string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts["budget "+name] = int64(n)
}

// startTarget runs a TCP server on 127.0.0.1:0 that hands each connection to serve.
func startTarget(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// echo copies everything back until the client half-closes.
func echo(c net.Conn) {
	io.Copy(c, c)
}
