package tunnel

import "time"

// Recorder receives what a session does, for metrics. *metrics.Metrics implements
// it; the interface keeps the core free of Prometheus. Implementations must be safe for
// concurrent use and must not block.
type Recorder interface {
	// SessionOpened counts a session that passed every check and started relaying;
	// front is the protocol its client spoke (metrics.FrontSOCKS5, FrontHTTP).
	SessionOpened(front, command, app string)
	// SessionReclassified moves an open session from app class from to class to,
	// when its class becomes known after it opened (a UDP association learns it
	// from its datagrams). SessionClosed then names to.
	SessionReclassified(front, command, from, to string)
	// SessionClosed ends a session that SessionOpened counted, with the class it
	// was last given.
	SessionClosed(front, command, app, result string, d time.Duration)
	// SessionRejected counts a session that ended before it relayed anything
	// (front metrics.FrontNone: its client sent nothing).
	SessionRejected(front, command, app, result string)
	// AuthAttempt counts one RFC 1929 login by result, one of auth.Results.
	AuthAttempt(result string)
	// Transferred counts bytes relayed; direction is upload (client to destination)
	// or download, transport tcp or udp.
	Transferred(user, app, direction, transport string, n int64)
	// Throttled adds time a session waited on token buckets.
	Throttled(app, direction string, d time.Duration)
	// InboundRefused counts a refused inbound path (bind, udp_unsolicited).
	InboundRefused(reason string)
	// Dialed observes a dial to a destination by result (ok, failed).
	Dialed(result string, d time.Duration)
	// Handshake observes the time from accept to the request's reply.
	Handshake(d time.Duration)
	// SessionReset counts a session the proxy cut with a TCP reset, by reason
	// (shutdown, revoked, stalled, error).
	SessionReset(reason string)
	// HandshakeSlots adds delta (+1 or -1) to the handshake slots held in stage
	// (metrics.StageSilent, StageTalking, StageIdle): a connection takes one at
	// accept, moves it between stages, and gives it back when its handshake ends,
	// it is evicted, or it ends.
	HandshakeSlots(stage string, delta int)
	// HandshakeEvicted counts an unfinished handshake closed to make room for a new
	// connection; scope says which cap was full (client or global).
	HandshakeEvicted(scope string)
	// TLSHandshakeFailed counts a failed TLS handshake with a client on the
	// HTTPS listener, by reason (tlscert.FailureReasons).
	TLSHandshakeFailed(reason string)
	// HTTP2Conn adds delta (+1 at its start, -1 at its end) to the HTTP/2
	// connections open; at the end, streams is how many it carried.
	HTTP2Conn(delta, streams int)
	// Budget reports a connection budget in force by its config key (such as
	// max_handshakes), at start and after each reload.
	Budget(name string, value int)
}

// NopRecorder records nothing.
type NopRecorder struct{}

func (NopRecorder) SessionOpened(string, string, string)                        {}
func (NopRecorder) SessionReclassified(string, string, string, string)          {}
func (NopRecorder) SessionClosed(string, string, string, string, time.Duration) {}
func (NopRecorder) SessionRejected(string, string, string, string)              {}
func (NopRecorder) AuthAttempt(string)                                          {}
func (NopRecorder) Transferred(string, string, string, string, int64)           {}
func (NopRecorder) Throttled(string, string, time.Duration)                     {}
func (NopRecorder) InboundRefused(string)                                       {}
func (NopRecorder) Dialed(string, time.Duration)                                {}
func (NopRecorder) Handshake(time.Duration)                                     {}
func (NopRecorder) SessionReset(string)                                         {}
func (NopRecorder) HandshakeSlots(string, int)                                  {}
func (NopRecorder) HandshakeEvicted(string)                                     {}
func (NopRecorder) Budget(string, int)                                          {}
func (NopRecorder) TLSHandshakeFailed(string)                                   {}
func (NopRecorder) HTTP2Conn(int, int)                                          {}
