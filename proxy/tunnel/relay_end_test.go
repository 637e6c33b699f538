package tunnel

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/usage"
)

// probingRecorder is usageRecorder that, before each report reaches the
// store, asks another session's grant what the user has left.
type probingRecorder struct {
	usageRecorder
	probe     *usage.Grant
	allowance int64

	mu       sync.Mutex
	reported int64 // bytes reported so far
	worst    int64 // the most left+reported ever exceeded the allowance by
}

func (r *probingRecorder) Transferred(user, app, direction, transport string, n int64) {
	r.mu.Lock()
	r.worst = max(r.worst, r.probe.Left()+r.reported+n-r.allowance)
	r.reported += n
	r.mu.Unlock()
	r.usageRecorder.Transferred(user, app, direction, transport, n)
}

// TestSessionEndKeepsBytesCounted: the bytes a session moved and reports at
// its end stay counted against the user's allowance until the report has
// counted them, so another session of the user never sees them as free. The
// session's end runs on a worker; a direction that released its grant before
// that worker reported left its last bytes counted nowhere for a moment. The
// allowance is just above what the session moves, so that what is left at the
// end is under the smallest share and the other session's grant offers all of
// it.
func TestSessionEndKeepsBytesCounted(t *testing.T) {
	const payload = 100_000
	const allowance = payload + 2_000
	// The source sends, then waits for the client's end: the download is the
	// direction that ends the session, with bytes still to report.
	source := startTarget(t, func(c net.Conn) {
		c.Write(make([]byte, payload))
		io.Copy(io.Discard, c)
		c.Close()
	})
	for i := range 10 {
		cfg := configs.Defaults()
		cfg.Shaping = configs.Shaping{DefaultGroup: "all", Groups: map[string]configs.Limit{"all": {Quota: &configs.Quota{Daily: allowance}}}}
		store, err := usage.New(&cfg, usage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		other, err := store.Admit("alice", "test", "connect")
		if err != nil {
			t.Fatal(err)
		}
		probe := other.Grant()
		rec := &probingRecorder{usageRecorder: usageRecorder{store: store}, probe: &probe, allowance: allowance}
		log, _ := testLogger()
		core := New(testPolicy(t), Options{Logger: log, Recorder: rec, Usage: store})
		c := relayQuota(t, core, store, source, false)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, payload)); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		c.(*net.TCPConn).CloseWrite()
		if n, err := io.Copy(io.Discard, c); n != 0 || err != nil {
			t.Fatalf("session %d: after the payload, %d bytes and %v; want EOF", i, n, err)
		}
		waitFor(t, "the session's last report", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return rec.reported == payload
		})
		if rec.worst > 0 {
			t.Fatalf("session %d: another session saw %d bytes free that the session had moved and not yet reported", i, rec.worst)
		}
	}
}
