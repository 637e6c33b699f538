//go:build !linux

package tunnel

import "net"

// readiness on systems without the Linux calls: the copy itself waits for data,
// so an idle direction holds its buffer while it waits.
type readiness struct{}

func newReadiness(net.Conn) *readiness { return nil }

func (*readiness) wait() (int, error) { return spliceChunk, nil }

const smallReadSize = 16 << 10

func (*readiness) read() ([]byte, error) { return nil, nil }

func (*readiness) release() {}
