package tunnel

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

// A connection's logger writes what Logger.With wrote: its attributes first,
// then the record's, for the connection, a stream and a logged-in session,
// and through loggers derived from them.
func TestLazyLogWritesTheConnectionsAttributes(t *testing.T) {
	peer := netip.MustParseAddrPort("192.0.2.1:5000")
	parent := &Conn{id: 7, peer: peer}
	stream := &Conn{id: 9, peer: peer, parent: parent}
	tests := []struct {
		name string
		log  func(inner slog.Handler) *slog.Logger
		want string
	}{
		{"conn", func(in slog.Handler) *slog.Logger { return slog.New(&lazyLog{inner: in, conn: parent}) },
			`{"msg":"m","conn":7,"client":"192.0.2.1:5000","k":1}`},
		{"stream", func(in slog.Handler) *slog.Logger { return slog.New(&lazyLog{inner: in, conn: stream}) },
			`{"msg":"m","conn":7,"client":"192.0.2.1:5000","stream":9,"k":1}`},
		{"session", func(in slog.Handler) *slog.Logger {
			return slog.New(&lazyLog{inner: in, conn: parent, user: "alice", named: true})
		}, `{"msg":"m","conn":7,"client":"192.0.2.1:5000","user":"alice","k":1}`},
		{"anonymous session", func(in slog.Handler) *slog.Logger {
			return slog.New(&lazyLog{inner: in, conn: parent, named: true})
		}, `{"msg":"m","conn":7,"client":"192.0.2.1:5000","user":"","k":1}`},
		{"With", func(in slog.Handler) *slog.Logger { return slog.New(&lazyLog{inner: in, conn: parent}).With("x", "y") },
			`{"msg":"m","conn":7,"client":"192.0.2.1:5000","x":"y","k":1}`},
		{"WithGroup", func(in slog.Handler) *slog.Logger { return slog.New(&lazyLog{inner: in, conn: parent}).WithGroup("g") },
			`{"msg":"m","conn":7,"client":"192.0.2.1:5000","g":{"k":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			inner := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
					return slog.Attr{}
				}
				return a
			}})
			log := tt.log(inner)
			log.Info("m", "k", 1)
			log.Debug("not written", "k", 2)
			if got := strings.TrimSpace(buf.String()); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
