package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// redisLogEvery spaces the lines of the Redis client's own logger: while Redis
// is down it would write one per failed dial, several a second per instance;
// the cluster node logs the outage itself, once.
const redisLogEvery = 10 * time.Second

// redisLogger takes the lines of go-redis's process-wide logger (see
// redis.SetLogger) into the daemon's log, at debug level, at most one per
// redisLogEvery, with the number left out since the last.
type redisLogger struct {
	log *slog.Logger

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func newRedisLogger(log *slog.Logger) *redisLogger { return &redisLogger{log: log} }

// Printf implements go-redis's internal.Logging.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < redisLogEvery {
		l.dropped++
		l.mu.Unlock()
		return
	}
	dropped := l.dropped
	l.last, l.dropped = now, 0
	l.mu.Unlock()
	l.log.DebugContext(ctx, "redis client", "line", fmt.Sprintf(format, v...), "dropped", dropped)
}
