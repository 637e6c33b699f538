package tunnel

import (
	"crypto/rand"
	"crypto/sha256"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
)

// TestNoPipeFallsBackToBuffers: when no splice pipe can be made (the process is
// out of descriptors: pipe2 fails with EMFILE), sessions go on through pooled
// buffers, unshaped and shaped, and every byte arrives. Before, the relay ended
// a streaming session that was established long before the descriptors ran out.
func TestNoPipeFallsBackToBuffers(t *testing.T) {
	payload := make([]byte, 8<<20)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	for _, tc := range []struct {
		name   string
		shaper *shaping.Registry
	}{
		{"unshaped", nil},
		{"shaped", shaping.NewRegistry(configs.Shaping{Global: configs.Limit{Upload: 1 << 30, Download: 1 << 30}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := testLogger()
			core := New(testPolicy(t), Options{Logger: log, Shaper: tc.shaper})
			core.pipes = func() (*pipe, error) { return nil, syscall.EMFILE }
			c := relayTo(t, core, startTarget(t, func(c net.Conn) { c.Write(payload) }))
			got, err := drain(c)
			if err != nil || sha256.Sum256(got) != want {
				t.Fatalf("read %d of %d bytes (intact: %v), %v", len(got), len(payload), sha256.Sum256(got) == want, err)
			}
			if !strings.Contains(logs.String(), "splice pipe unavailable") {
				t.Error("no warning that pipes were unavailable")
			}
		})
	}
}
