package proxy

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Keepalive of client connections: a client that vanishes without a word (a
// laptop leaving the Wi-Fi) is dropped after keepAliveIdle plus keepAliveCount
// unanswered probes keepAliveInterval apart, two and a half minutes, rather than
// holding its session until the idle timeout. These are Go's defaults for
// accepted connections, made explicit.
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 15 * time.Second
	keepAliveCount    = 9
)

// Listen opens a TCP listener for [Server.Serve] whose connections have keepalive
// on.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := listenConfig().Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}
