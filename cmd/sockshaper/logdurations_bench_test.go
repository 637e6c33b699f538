package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkAccountingLine writes an accounting-like line (17 attributes,
// three durations) through the daemon's JSON logger, with the durations as
// seconds (the daemon's) and as slog writes them by default, to show what the
// ReplaceAttr costs per session.
func BenchmarkAccountingLine(b *testing.B) {
	for _, bc := range []struct {
		name    string
		replace func([]string, slog.Attr) slog.Attr
	}{{"seconds", durationSeconds}, {"slog-default", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: bc.replace}))
			b.ReportAllocs()
			for b.Loop() {
				log.LogAttrs(context.Background(), slog.LevelInfo, "session",
					slog.Uint64("session", 1), slog.String("client", "127.0.0.1:5000"), slog.String("front", "socks5"),
					slog.String("user", "alice"), slog.String("group", "students"), slog.String("command", "connect"),
					slog.String("destination", "example.com:443"), slog.String("dialled", "93.184.216.34:443"),
					slog.String("app", "web"), slog.String("result", "ok"), slog.Int64("bytes_up", 1000),
					slog.Int64("bytes_down", 5000), slog.Duration("duration", 3755686*time.Nanosecond),
					slog.Duration("throttled_up", 0), slog.Duration("throttled_down", time.Millisecond),
					slog.String("close_reason", "eof"), slog.Bool("quota_limited", false), slog.String("rule", ""))
			}
		})
	}
}
