package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The operations of sockshaper_ldap_request_duration_seconds.
const (
	// OpConnect is a new connection: TCP, TLS (ldaps or StartTLS) and the
	// service account's bind.
	OpConnect = "connect"
	// OpSearch is a search: the user's entry, or the groups whose member it is.
	OpSearch = "search"
	// OpBind is a bind as the user with the client's password.
	OpBind = "bind"
)

// DirectoryOperations lists the operations, in the order metrics pre-initialise
// them.
func DirectoryOperations() []string { return []string{OpConnect, OpSearch, OpBind} }

// The kinds of directory errors, the values of sockshaper_ldap_errors_total's kind.
const (
	// KindUnreachable: no connection (refused, no route, name not found) or the
	// connection broke.
	KindUnreachable = "unreachable"
	// KindTimeout: no answer within auth.ldap.timeout.
	KindTimeout = "timeout"
	// KindTLS: the TLS handshake failed (an unknown CA, a wrong host name, no
	// StartTLS).
	KindTLS = "tls"
	// KindOther: the directory answered with an error (the service account's
	// password refused, base_dn not found, busy).
	KindOther = "other"
)

// DirectoryErrorKinds lists the kinds, in the order metrics pre-initialise them.
func DirectoryErrorKinds() []string {
	return []string{KindUnreachable, KindTimeout, KindTLS, KindOther}
}

// DirectoryRecorder receives a directory's metrics. *metrics.Metrics implements it;
// the interface keeps this package free of Prometheus. Implementations must be safe
// for concurrent use and must not block.
type DirectoryRecorder interface {
	// DirectoryRequest observes a request that the directory answered, by
	// operation (one of DirectoryOperations).
	DirectoryRequest(operation string, d time.Duration)
	// DirectoryError counts a failed request by kind (one of DirectoryErrorKinds).
	DirectoryError(kind string)
	// DirectoryConnOpened and DirectoryConnClosed follow the open connections.
	DirectoryConnOpened()
	DirectoryConnClosed()
}

type nopDirectoryRecorder struct{}

func (nopDirectoryRecorder) DirectoryRequest(string, time.Duration) {}
func (nopDirectoryRecorder) DirectoryError(string)                  {}
func (nopDirectoryRecorder) DirectoryConnOpened()                   {}
func (nopDirectoryRecorder) DirectoryConnClosed()                   {}

// DirectoryError is why a directory could not answer: its kind and the step.
type DirectoryError struct {
	Kind string // one of DirectoryErrorKinds
	Op   string // what failed, e.g. "connect", "StartTLS", "search"
	Err  error
}

func (e *DirectoryError) Error() string { return e.Op + ": " + e.Err.Error() }

func (e *DirectoryError) Unwrap() error { return e.Err }

// ErrorKind returns the kind of a directory error, "" for nil or another error.
func ErrorKind(err error) string {
	var de *DirectoryError
	if errors.As(err, &de) {
		return de.Kind
	}
	return ""
}

// classify names the kind of a failed step: a timeout when ctx's deadline passed
// (the connection was closed under the request), else what err says. tlsStep marks
// the TLS handshake, whose failures are TLS errors unless the network broke.
func classify(ctx context.Context, err error, tlsStep bool) string {
	var ne net.Error
	var le *ldap.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.As(err, &le) && le.Err != nil && le.Err.Error() == "ldap: connection timed out":
		return KindTimeout // go-ldap's request timeout, set to the same deadline
	case tlsStep:
		return KindTLS
	case errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork:
		return KindOther // the directory answered
	}
	return KindUnreachable
}

// answered reports whether err is a result the directory sent, after which the
// connection is still good, as opposed to a broken or timed-out connection.
func answered(err error) bool {
	var le *ldap.Error
	return err == nil || errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork
}

// outageLog says that the directory is unreachable once per interval however many
// logins fail, and that it is back once, when a login gets an answer again.
type outageLog struct {
	log      *slog.Logger
	url      string
	interval time.Duration

	mu         sync.Mutex
	down       bool
	last       time.Time // of the last line
	suppressed int       // failures since that line
}

func (o *outageLog) failed(err error) {
	o.mu.Lock()
	now := time.Now()
	if o.down && now.Sub(o.last) < o.interval {
		o.suppressed++
		o.mu.Unlock()
		return
	}
	suppressed := o.suppressed
	o.down, o.last, o.suppressed = true, now, 0
	o.mu.Unlock()
	msg := "directory unreachable"
	if ErrorKind(err) == KindOther {
		msg = "directory error"
	}
	o.log.Warn(msg, "url", o.url, "kind", ErrorKind(err), "err", err,
		"failures_not_logged", suppressed, "next_line_after", o.interval)
}

func (o *outageLog) answered() {
	o.mu.Lock()
	if !o.down {
		o.mu.Unlock()
		return
	}
	o.down, o.suppressed = false, 0
	o.mu.Unlock()
	o.log.Info("directory reachable again", "url", o.url)
}
