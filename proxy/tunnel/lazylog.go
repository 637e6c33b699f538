package tunnel

import (
	"context"
	"log/slog"
)

// lazyLog is the handler of a connection's logger (and of a logged-in
// session's): it names the connection, its client, its stream and the
// session's user in the records it writes, formatting them only when it writes
// one. slog's Logger.With formats them when it is called, and under churn that
// was a handler clone and a buffer per connection and per session, for lines
// that are mostly never written (issue 24). A Conn and a Session embed theirs.
type lazyLog struct {
	inner slog.Handler // the core's
	conn  *Conn
	user  string // the session's user; named says whether there is one
	named bool
}

// Enabled reports whether the core's handler writes records of level l.
func (h *lazyLog) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle writes r with the connection's attributes before its own, where
// Logger.With would have put them.
func (h *lazyLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(h.attrs()...)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

// WithAttrs and WithGroup return the core's handler with the connection's
// attributes formatted: a logger derived from a connection's is rare.
func (h *lazyLog) WithAttrs(as []slog.Attr) slog.Handler {
	return h.inner.WithAttrs(append(h.attrs(), as...))
}

// WithGroup: see WithAttrs.
func (h *lazyLog) WithGroup(name string) slog.Handler {
	return h.inner.WithAttrs(h.attrs()).WithGroup(name)
}

// attrs are conn and client (a stream's: its connection's), stream (a
// stream's own number) and user (a logged-in session's).
func (h *lazyLog) attrs() []slog.Attr {
	c, as := h.conn, make([]slog.Attr, 0, 4)
	if c.parent != nil {
		as = append(as, slog.Uint64("conn", c.parent.id), slog.String("client", c.peer.String()), slog.Uint64("stream", c.id))
	} else {
		as = append(as, slog.Uint64("conn", c.id), slog.String("client", c.peer.String()))
	}
	if h.named {
		as = append(as, slog.String("user", h.user))
	}
	return as
}
