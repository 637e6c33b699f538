// Package m365 reads Microsoft's "Microsoft 365 IP Address and URL web service"
// (https://endpoints.office.com) and turns the endpoint sets of one service area
// into sockshaper's app class rules: name suffixes, networks and ports.
//
// Everything the service returns is untrusted input. Responses are bounded in
// size, every value is checked, and a value that cannot be a safe rule (a
// malformed or overly broad network, a name with a path, a port out of range) is
// skipped with a reason rather than trusted or allowed to fail the whole list.
package m365

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxResponse is the largest response body accepted, 8 MiB. The service's whole
// Worldwide list (every service area) is under 100 KiB; a response a hundred
// times larger is not a list of endpoints.
const MaxResponse = 8 << 20

// maxSets bounds the endpoint sets of one response. The Worldwide list has about
// 90; ten thousand leaves room for growth and keeps a hostile response's cost in
// memory and time small.
const maxSets = 10_000

// instances returns the service instances the web service publishes, as its
// URLs spell them.
func instances() []string { return []string{"Worldwide", "USGovDoD", "USGovGCCHigh", "China"} }

// Instance returns the service instance named s (case-insensitive) as the
// service spells it, or an error listing the valid ones.
func Instance(s string) (string, error) {
	for _, in := range instances() {
		if strings.EqualFold(s, in) {
			return in, nil
		}
	}
	return "", fmt.Errorf("unknown instance %q: want one of %s", s, strings.Join(instances(), ", "))
}

// EndpointSet is one record of the endpoints web method: a group of names and
// networks that share a service area, category and ports. Fields the service
// omits when blank are zero.
type EndpointSet struct {
	// ID is the set's immutable number, the ID column of Microsoft's tables.
	ID int64 `json:"id"`
	// ServiceArea is "Common", "Exchange", "SharePoint" or "Skype" (Teams).
	ServiceArea string `json:"serviceArea"`
	// URLs are host names, possibly with wildcards such as "*.lync.com".
	URLs []string `json:"urls"`
	// IPs are CIDR prefixes, IPv4 and IPv6.
	IPs []string `json:"ips"`
	// TCPPorts and UDPPorts are comma-separated ports and ranges ("443,80",
	// "3478-3481").
	TCPPorts string `json:"tcpPorts"`
	UDPPorts string `json:"udpPorts"`
	// Category is "Optimize", "Allow" or "Default".
	Category string `json:"category"`
	// Required reports whether Microsoft 365 needs the set to work.
	Required bool `json:"required"`
	// ExpressRoute reports whether the set is routed over ExpressRoute.
	ExpressRoute bool `json:"expressRoute"`
}

// Version is the answer of the version web method for one instance.
type Version struct {
	// Instance is the service instance, such as "Worldwide".
	Instance string `json:"instance"`
	// Latest is the list's version, yyyymmddnn.
	Latest string `json:"latest"`
}

// ParseEndpoints decodes the endpoints web method's JSON: one array of endpoint
// sets, nothing after it. Fields it does not know are ignored (the service may
// add some); a field of the wrong type, a second value or more than 10,000 sets
// is an error.
func ParseEndpoints(data []byte) ([]EndpointSet, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '[' {
		return nil, errors.New("endpoints: not a JSON array of endpoint sets")
	}
	var sets []EndpointSet
	if err := decodeOne(data, &sets); err != nil {
		return nil, fmt.Errorf("endpoints: %w", err)
	}
	if len(sets) > maxSets {
		return nil, fmt.Errorf("endpoints: %d endpoint sets, more than the %d accepted", len(sets), maxSets)
	}
	return sets, nil
}

// ParseVersion decodes the version web method's JSON for instance: an object
// naming that instance, whose latest version is ten digits (yyyymmddnn).
func ParseVersion(data []byte, instance string) (Version, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return Version{}, errors.New("version: not a JSON object")
	}
	var v Version
	if err := decodeOne(data, &v); err != nil {
		return Version{}, fmt.Errorf("version: %w", err)
	}
	if !strings.EqualFold(v.Instance, instance) {
		return Version{}, fmt.Errorf("version: the answer is for instance %s, not %s", quote(v.Instance), instance)
	}
	if len(v.Latest) != 10 || strings.Trim(v.Latest, "0123456789") != "" {
		return Version{}, fmt.Errorf("version: latest %s is not a version of ten digits (yyyymmddnn)", quote(v.Latest))
	}
	v.Instance = instance
	return v, nil
}

// decodeOne decodes data as exactly one JSON value into v.
func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// quote returns s quoted for a message, cut to 64 bytes: values come from the
// network and must not flood or forge log lines.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
