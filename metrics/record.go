package metrics

import "time"

// SessionOpened counts a session that passed every check and started relaying:
// sockshaper_sessions_active{front, command, app} goes up by one. front is the
// protocol the client spoke ([FrontSOCKS5], [FrontHTTP]). The same front, command
// and app must be passed to [Metrics.SessionClosed] when the session ends.
func (m *Metrics) SessionOpened(front, command, app string) {
	if m == nil {
		return
	}
	m.kids.active.of(label3{front, command, app}).Inc()
}

// SessionReclassified moves a session that [Metrics.SessionOpened] counted from
// app class from to class to: sockshaper_sessions_active{front, command, from} goes
// down by one and {front, command, to} up by one. [Metrics.SessionClosed] must then be given
// to. A UDP association opens as the unclassified class and takes the class of
// its datagrams once they show it. Nothing happens when from equals to.
func (m *Metrics) SessionReclassified(front, command, from, to string) {
	if m == nil || from == to {
		return
	}
	m.kids.active.of(label3{front, command, from}).Dec()
	m.kids.active.of(label3{front, command, to}).Inc()
}

// SessionClosed ends a session that [Metrics.SessionOpened] counted, with the same
// front, command and app (the last class [Metrics.SessionReclassified] gave it):
// sockshaper_sessions_active goes down by one,
// sockshaper_sessions_total{front, command, app, result} up by one, and d (the
// session's lifetime) is observed in sockshaper_session_duration_seconds{app}.
func (m *Metrics) SessionClosed(front, command, app, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.kids.active.of(label3{front, command, app}).Dec()
	m.kids.total.of(label4{front, command, app, result}).Inc()
	m.kids.duration.of(app).Observe(d.Seconds())
}

// SessionRejected counts a session that ended before it was opened (limit_reached,
// auth_failed, auth_required, client_denied, destination_denied, command_refused,
// dial_failed, protocol_error) in sockshaper_sessions_total{front, command, app, result}; front is
// [FrontNone] for a connection refused before it sent a byte. Its duration is not
// observed: the handshake histogram covers that time.
func (m *Metrics) SessionRejected(front, command, app, result string) {
	if m == nil {
		return
	}
	m.kids.total.of(label4{front, command, app, result}).Inc()
}

// AuthAttempt counts one login (a password, a Kerberos ticket) in
// sockshaper_auth_attempts_total{result}; result is one of [AuthResults].
func (m *Metrics) AuthAttempt(result string) {
	if m == nil {
		return
	}
	m.kids.auth.of(result).Inc()
}

// Transferred counts n bytes relayed in sockshaper_transferred_bytes_total{app,
// direction, transport} and, while per-user export is on, in
// sockshaper_user_transferred_bytes_total{user, app, direction} (or the dropped
// counter once the user cap is reached). An empty user (no authentication) is
// exported as [AnonymousUser]. n of zero or less is ignored.
func (m *Metrics) Transferred(user, app, direction, transport string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.kids.transferred.of(label3{app, direction, transport}).Add(float64(n))
	m.perUser.add(user, app, direction, float64(n))
}

// Throttled adds d, the time a session waited on token buckets, to
// sockshaper_throttled_seconds_total{app, direction}. d of zero or less is ignored.
func (m *Metrics) Throttled(app, direction string, d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.kids.throttled.of(label2{app, direction}).Add(d.Seconds())
}

// InboundRefused counts a refused inbound path in
// sockshaper_inbound_refused_total{reason}; reason is [InboundBind] or
// [InboundUDPUnsolicited].
func (m *Metrics) InboundRefused(reason string) {
	if m == nil {
		return
	}
	m.inboundRefused.WithLabelValues(reason).Inc()
}

// Dialed observes d, the time spent resolving and connecting to a destination, in
// sockshaper_dial_duration_seconds{result}; result is [DialOK] or [DialFailed].
// Destinations the policy denies are not dialed and not observed.
func (m *Metrics) Dialed(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.kids.dial.of(result).Observe(d.Seconds())
}

// Handshake observes d, the time from accept to the reply to the SOCKS request, in
// sockshaper_handshake_duration_seconds.
func (m *Metrics) Handshake(d time.Duration) {
	if m == nil {
		return
	}
	m.handshakeDuration.Observe(d.Seconds())
}

// ConfigLoaded records the config loaded at start, at time at: it sets
// sockshaper_config_last_reload_success_timestamp_seconds without counting a reload,
// so that "time since the last successful load" is meaningful before any SIGHUP.
func (m *Metrics) ConfigLoaded(at time.Time) {
	if m == nil {
		return
	}
	m.lastReloadSuccess.Set(unixSeconds(at))
}

// ConfigReloaded counts a reload in sockshaper_config_reloads_total{result}, result
// being success when ok and error otherwise. On success it also sets
// sockshaper_config_last_reload_success_timestamp_seconds to at.
func (m *Metrics) ConfigReloaded(ok bool, at time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.configReloads.WithLabelValues(reloadError).Inc()
		return
	}
	m.configReloads.WithLabelValues(reloadSuccess).Inc()
	m.lastReloadSuccess.Set(unixSeconds(at))
}

// SetPerUser applies the per-user settings of a reloaded config; maxUsers follows the
// rules of [Options.PerUserMaxUsers]. Turning per-user export off deletes every
// per-user series; lowering the cap below the number of users already exported
// deletes them too, and the first users seen afterwards get series again. Otherwise
// existing series are kept.
func (m *Metrics) SetPerUser(perUser bool, maxUsers int) {
	if m == nil {
		return
	}
	m.perUser.set(perUser, maxUsers)
}

// unixSeconds returns t as Unix time in seconds with sub-second precision.
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / float64(time.Second)
}

// SessionReset counts a session the proxy cut with a TCP reset in
// sockshaper_sessions_reset_total{reason}; reason is one of [ResetReasons].
func (m *Metrics) SessionReset(reason string) {
	if m == nil {
		return
	}
	m.sessionsReset.WithLabelValues(reason).Inc()
}
