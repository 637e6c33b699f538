package proxy

import "time"

// Recorder receives what a session does, for metrics. *metrics.Metrics implements
// it; the interface keeps proxy free of Prometheus. Implementations must be safe for
// concurrent use and must not block.
type Recorder interface {
	// SessionOpened counts a session that passed every check and started relaying.
	SessionOpened(command, app string)
	// SessionReclassified moves an open session from app class from to class to,
	// when its class becomes known after it opened (a UDP association learns it
	// from its datagrams). SessionClosed then names to.
	SessionReclassified(command, from, to string)
	// SessionClosed ends a session that SessionOpened counted, with the class it
	// was last given.
	SessionClosed(command, app, result string, d time.Duration)
	// SessionRejected counts a session that ended before it relayed anything.
	SessionRejected(command, app, result string)
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
	// HandshakeStarted counts a connection that took a handshake slot;
	// HandshakeEnded one that gave it back (its handshake ended or it was evicted),
	// once per HandshakeStarted.
	HandshakeStarted()
	HandshakeEnded()
	// HandshakeEvicted counts an unfinished handshake closed to make room for a new
	// connection; scope says which cap was full (client or global).
	HandshakeEvicted(scope string)
	// Budget reports a connection budget in force by its config key (such as
	// max_handshakes), at start and after each reload.
	Budget(name string, value int)
}

// Label values shared with metrics and the accounting log.
const (
	commandNone         = "none"
	commandConnect      = "connect"
	commandBind         = "bind"
	commandUDPAssociate = "udp_associate"

	resultOK                = "ok"
	resultAuthFailed        = "auth_failed"
	resultClientDenied      = "client_denied"
	resultDestinationDenied = "destination_denied"
	resultCommandRefused    = "command_refused"
	resultDialFailed        = "dial_failed"
	resultLimitReached      = "limit_reached"
	resultProtocolError     = "protocol_error"

	directionUpload   = "upload"
	directionDownload = "download"
)

type nopRecorder struct{}

func (nopRecorder) SessionOpened(string, string)                        {}
func (nopRecorder) SessionReclassified(string, string, string)          {}
func (nopRecorder) SessionClosed(string, string, string, time.Duration) {}
func (nopRecorder) SessionRejected(string, string, string)              {}
func (nopRecorder) AuthAttempt(string)                                  {}
func (nopRecorder) Transferred(string, string, string, string, int64)   {}
func (nopRecorder) Throttled(string, string, time.Duration)             {}
func (nopRecorder) InboundRefused(string)                               {}
func (nopRecorder) Dialed(string, time.Duration)                        {}
func (nopRecorder) Handshake(time.Duration)                             {}
func (nopRecorder) SessionReset(string)                                 {}
func (nopRecorder) HandshakeStarted()                                   {}
func (nopRecorder) HandshakeEnded()                                     {}
func (nopRecorder) HandshakeEvicted(string)                             {}
func (nopRecorder) Budget(string, int)                                  {}
