package httpproxy

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// What the HTTP/2 front (package h2proxy) shares with this one, so that both
// parse destinations and credentials, and answer refusals, alike.

// Authority parses a request's authority, host:port (port required when
// needPort, else 80 when absent), with this front's strict rules: no user
// info, a valid name or address, a port from 1 to 65535. It returns the
// destination as the core takes it and as logs show it.
func Authority(a string, needPort bool) (tunnel.Request, error) {
	d, err := parseAuthority(a, !needPort)
	if err != nil {
		return tunnel.Request{}, err
	}
	return tunnel.Request{Target: d.target, Requested: d.hostPort()}, nil
}

// ParseBasic returns the user and password of a Proxy-Authorization value
// of the Basic scheme; ok is false when it is empty, of another scheme, or
// malformed.
func ParseBasic(v string) (user, password string, ok bool) {
	scheme, token, found := strings.Cut(v, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimLeft(token, " "))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// Unreadable reports whether a Proxy-Authorization value v was sent but is
// no credentials the proxy can check: a malformed Basic value, or Basic where
// only Kerberos is accepted (passwords false). Such a request is a failed
// login (auth_failed), unlike one that sent no credentials and is only
// challenged (auth_required).
func Unreadable(v string, found, passwords bool) bool {
	if !found || v == "" {
		return false
	}
	_, _, ok := ParseBasic(v)
	return !ok || !passwords
}

// Challenge is the Proxy-Authenticate value of a 407 under cfg.
func Challenge(cfg *configs.Config) string {
	return `Basic realm="` + cfg.HTTP.Realm + `", charset="UTF-8"`
}

// Refusal returns the status and text a refusal of the core is answered
// with, and whether it gets a Retry-After; ok is false for Gone (no answer).
func Refusal(o tunnel.Outcome) (status int, text string, retry, ok bool) {
	r, ok := refusal(o)
	for _, f := range r.fields {
		retry = retry || f.Name == "Retry-After"
	}
	return r.status, r.text, retry, ok
}

// LoginRefusal returns the status of a login the core refused with result (an
// auth result): 503 when the check could not be made (not the user's fault: a
// 407 would make a browser ask for the password again), 407 otherwise; 0 when
// the client is gone (abandoned).
func LoginRefusal(result string) int {
	switch result {
	case auth.ResultAbandoned:
		return 0
	case auth.ResultBusy, auth.ResultUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusProxyAuthRequired
}

// HopByHop reports whether a field is not to be forwarded: hop-by-hop (RFC 9110
// section 7.6.1, Proxy-Authorization among them), a framing field the proxy
// writes itself, or named in the message's Connection field (listed, lower
// case).
func HopByHop(name string, listed []string) bool { return isHop(name, listed) }

// Via is the Via field the proxy adds to what it forwards.
const Via = via
