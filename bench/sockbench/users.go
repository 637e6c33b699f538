package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// credential is one RFC 1929 username and password. The zero value means no
// authentication (SOCKS5 method 0x00).
type credential struct {
	user     string
	password string
}

// label names the credential in reports: the user, or "-" without authentication.
func (c credential) label() string {
	if c.user == "" {
		return "-"
	}
	return c.user
}

// maxField is RFC 1929's limit: username and password lengths are one byte each.
const maxField = 255

// parseUsers parses "alice,bob:pw2" into credentials; a user given without a
// password gets defaultPassword. An empty list means no authentication and
// returns nil. Duplicate or empty names and fields longer than 255 bytes are
// errors.
func parseUsers(list, defaultPassword string) ([]credential, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []credential
	seen := map[string]bool{}
	for item := range strings.SplitSeq(list, ",") {
		user, pw, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			pw = defaultPassword
		}
		switch {
		case user == "":
			return nil, fmt.Errorf("empty user name in %q", list)
		case seen[user]:
			return nil, fmt.Errorf("user %q is listed twice", user)
		case len(user) > maxField || len(pw) > maxField:
			return nil, fmt.Errorf("user %q: name and password must be at most %d bytes", user, maxField)
		}
		seen[user] = true
		out = append(out, credential{user: user, password: pw})
	}
	return out, nil
}

// roundRobin gives connection i the credential users[i%len(users)], or no
// authentication for every connection when users is empty.
func roundRobin(users []credential, conns int) []credential {
	out := make([]credential, conns)
	if len(users) == 0 {
		return out
	}
	for i := range out {
		out[i] = users[i%len(users)]
	}
	return out
}

// parsePerConn parses "alice=16,bob=1" into one credential per connection: 16
// connections as alice, then one as bob. Every name must be one of users. The
// total must be 1 to maxConns.
func parsePerConn(spec string, users []credential) ([]credential, error) {
	byName := map[string]credential{}
	for _, u := range users {
		byName[u.user] = u
	}
	var out []credential
	for item := range strings.SplitSeq(spec, ",") {
		name, count, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want USER=N", item)
		}
		c, known := byName[name]
		if !known {
			return nil, fmt.Errorf("user %q is not in -users", name)
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: N must be a whole number of at least 1", item)
		}
		if len(out)+n > maxConns {
			return nil, fmt.Errorf("more than %d connections in all", maxConns)
		}
		for range n {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no connections")
	}
	return out, nil
}
