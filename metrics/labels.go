package metrics

// Values of the command label. A session's command is [CommandNone] until its
// request has been read, so sessions refused earlier (limits, client policy, failed
// authentication, malformed greetings) carry it. [CommandConnect] is a tunnel (SOCKS5
// CONNECT, HTTP CONNECT); [CommandRequest] an HTTP request the proxy forwarded to its
// origin (an absolute URI such as GET http://host/path).
const (
	CommandConnect      = "connect"
	CommandBind         = "bind"
	CommandUDPAssociate = "udp_associate"
	CommandRequest      = "request"
	CommandNone         = "none"
)

// Values of the front label: the protocol a client spoke to the proxy.
const (
	FrontSOCKS5    = "socks5"
	FrontHTTP      = "http"
	FrontSOCKS5TLS = "socks5_tls" // SOCKS5 inside TLS, on tls.listen
	FrontHTTPS     = "https"      // HTTP/1.1 inside TLS, on tls.listen
	FrontHTTP2     = "http2"      // a stream of an HTTP/2 connection, on tls.listen
	FrontNone      = "none"       // the connection sent nothing to tell
)

// Values of the result label of sockshaper_sessions_total. [ResultOK] is a session
// that relayed and ended normally; every other value names why a session was refused
// or failed.
const (
	ResultOK = "ok"
	// ResultAuthFailed is a login refused: a wrong password or unknown user, a
	// throttled or unverifiable login, a refused Kerberos ticket, credentials
	// that cannot be read, or a SOCKS5 client offering no method the proxy
	// accepts. Alerts on failed logins select it.
	ResultAuthFailed = "auth_failed"
	// ResultAuthRequired is an HTTP request that came without credentials and
	// got the 407 challenge (401 for the proxy's own pages): what every browser
	// does before it sends them, so it is not a failed login, and is no login
	// attempt (sockshaper_auth_attempts_total) nor counts toward the throttle.
	ResultAuthRequired      = "auth_required"
	ResultClientDenied      = "client_denied"
	ResultDestinationDenied = "destination_denied"
	ResultCommandRefused    = "command_refused"
	ResultDialFailed        = "dial_failed"
	ResultLimitReached      = "limit_reached"
	ResultProtocolError     = "protocol_error"
	// ResultQuotaExceeded is a session refused because its user used up an
	// allowance whose over_rate is 0.
	ResultQuotaExceeded = "quota_exceeded"
)

// Values of the result label of sockshaper_auth_attempts_total (proxy/auth's
// Results, the same list). [AuthThrottled] is a login refused without checking the
// password because its client address, or that user from it, failed too often;
// [AuthBusy] one refused because the queue of password checks was full;
// [AuthUnavailable] one the directory could not answer; [AuthAbandoned] one whose
// client left, or whose handshake deadline passed, before the answer. Only
// [AuthFailed] counts toward the throttle.
const (
	AuthOK          = "ok"
	AuthFailed      = "failed"
	AuthThrottled   = "throttled"
	AuthBusy        = "busy"
	AuthUnavailable = "unavailable"
	AuthAbandoned   = "abandoned"
)

// Values of the result label of sockshaper_dial_duration_seconds. A destination the
// policy denies is never dialed, so it is not observed here; it shows up as
// sockshaper_sessions_total{result="destination_denied"}.
const (
	DialOK     = "ok"
	DialFailed = "failed"
)

// Values of the direction and transport labels. Upload is client to destination.
const (
	DirectionUpload   = "upload"
	DirectionDownload = "download"
	TransportTCP      = "tcp"
	TransportUDP      = "udp"
)

// Values of the reason label of sockshaper_inbound_refused_total: a BIND request, and
// a UDP datagram from an address and port the client never sent to.
const (
	InboundBind           = "bind"
	InboundUDPUnsolicited = "udp_unsolicited"
)

// Values of the reason label of sockshaper_sessions_reset_total: why the proxy cut
// a session with a TCP reset.
const (
	ResetShutdown = "shutdown"
	ResetRevoked  = "revoked"
	ResetStalled  = "stalled"
	ResetError    = "error"
	// ResetQuota is a session cut because its user used up an allowance whose
	// over_rate is 0.
	ResetQuota = "quota"
)

// ResetReasons returns the values of the reason label of
// sockshaper_sessions_reset_total.
func ResetReasons() []string {
	return []string{ResetShutdown, ResetRevoked, ResetStalled, ResetError, ResetQuota}
}

// Values of the result label of sockshaper_config_reloads_total.
const (
	reloadSuccess = "success"
	reloadError   = "error"
)

// The label value lists that [Metrics.preinit] pre-initialises. They are functions,
// not package variables, so nothing can change them.

// frontCommands pairs each front with the commands it can carry: a connection that
// sent nothing to tell its protocol by has no command, HTTP has no BIND nor UDP.
func frontCommands() []struct {
	front    string
	commands []string
} {
	return []struct {
		front    string
		commands []string
	}{
		{FrontSOCKS5, []string{CommandConnect, CommandBind, CommandUDPAssociate, CommandNone}},
		{FrontHTTP, []string{CommandConnect, CommandRequest, CommandNone}},
		{FrontSOCKS5TLS, []string{CommandConnect, CommandBind, CommandUDPAssociate, CommandNone}},
		{FrontHTTPS, []string{CommandConnect, CommandRequest, CommandNone}},
		{FrontHTTP2, []string{CommandConnect, CommandRequest, CommandNone}},
		{FrontNone, []string{CommandNone}},
	}
}

func results() []string {
	return []string{
		ResultOK, ResultAuthFailed, ResultAuthRequired, ResultClientDenied, ResultDestinationDenied,
		ResultCommandRefused, ResultDialFailed, ResultLimitReached, ResultProtocolError,
		ResultQuotaExceeded,
	}
}

// AuthResults lists the values of the result label of
// sockshaper_auth_attempts_total: the password logins' and then the Kerberos
// logins' ([KerberosAuthResults]).
func AuthResults() []string {
	return append([]string{AuthOK, AuthFailed, AuthThrottled, AuthBusy, AuthUnavailable, AuthAbandoned},
		KerberosAuthResults()...)
}

// KerberosAuthResults lists the values of the result label of
// sockshaper_auth_attempts_total for Kerberos logins (HTTP Negotiate, SOCKS5
// GSS-API): kerberos_ok, or why the ticket was refused (proxy/auth's
// KerberosResults, each prefixed, the same list). A Kerberos login whose user
// the directory could not be asked about counts as unavailable or abandoned,
// as a password login does.
func KerberosAuthResults() []string {
	return []string{"kerberos_ok", "kerberos_malformed", "kerberos_mechanism", "kerberos_wrong_service",
		"kerberos_enctype", "kerberos_no_key", "kerberos_integrity", "kerberos_expired", "kerberos_not_yet_valid",
		"kerberos_clock_skew", "kerberos_realm", "kerberos_replay", "kerberos_address", "kerberos_bad_name",
		"kerberos_busy", "kerberos_unknown_user"}
}

func directions() []string { return []string{DirectionUpload, DirectionDownload} }

func transports() []string { return []string{TransportTCP, TransportUDP} }

// preinit creates every label combination known up front with a zero value, so that
// queries return 0 instead of nothing before the first event. Combinations with an
// app label are created for each of apps.
func (m *Metrics) preinit(apps []string) {
	for _, r := range AuthResults() {
		m.authAttempts.WithLabelValues(r)
	}
	for _, r := range []string{InboundBind, InboundUDPUnsolicited} {
		m.inboundRefused.WithLabelValues(r)
	}
	for _, r := range []string{DialOK, DialFailed} {
		m.dialDuration.WithLabelValues(r)
	}
	for _, r := range []string{reloadSuccess, reloadError} {
		m.configReloads.WithLabelValues(r)
	}
	for _, r := range ResetReasons() {
		m.sessionsReset.WithLabelValues(r)
	}
	for _, app := range apps {
		m.preinitApp(app)
	}
}

// InitApps creates the zero series of app classes that a reload added, as [New]
// does for those known at start; series of known classes are left as they are.
func (m *Metrics) InitApps(apps []string) {
	if m == nil {
		return
	}
	for _, app := range apps {
		m.preinitApp(app)
	}
}

// preinitApp creates the zero series of one app class.
func (m *Metrics) preinitApp(app string) {
	m.sessionDuration.WithLabelValues(app)
	for _, fc := range frontCommands() {
		for _, c := range fc.commands {
			if c != CommandNone { // a session with no command never opens
				m.sessionsActive.WithLabelValues(fc.front, c, app)
			}
			for _, r := range results() {
				m.sessionsTotal.WithLabelValues(fc.front, c, app, r)
			}
		}
	}
	for _, d := range directions() {
		m.throttled.WithLabelValues(app, d)
		m.perUser.dropped.WithLabelValues(app, d)
		for _, t := range transports() {
			m.transferred.WithLabelValues(app, d, t)
		}
	}
}
