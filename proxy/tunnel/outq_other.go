//go:build !linux

package tunnel

import "net"

// queueProbe is Linux's measure of a peer's progress (see outq_linux.go);
// elsewhere a write's own progress is all the stall rule sees.
type queueProbe struct{}

func newQueueProbe(net.Conn) *queueProbe { return nil }
func (p *queueProbe) setMark()           {}
func (p *queueProbe) progressed() bool   { return false }
