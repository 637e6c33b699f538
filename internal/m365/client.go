package m365

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// DefaultBase is where Microsoft serves the web service.
const DefaultBase = "https://endpoints.office.com"

// maxRedirects bounds the redirects a request follows.
const maxRedirects = 5

// Client asks the web service at one base URL. Every request carries the same
// ClientRequestId, a random GUID made by [NewClient]: the service requires one
// and asks for it to stay the same across a client's calls. A Client is safe
// for concurrent use.
type Client struct {
	base      *url.URL
	http      *http.Client
	requestID string
}

// NewClient returns a client of the service at base, such as [DefaultBase] or
// a mirror (http or https, no query). hc nil uses a client of its own that
// honours the proxy environment (HTTPS_PROXY) and refuses redirects from https
// to http; the caller bounds time with each call's context.
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return nil, fmt.Errorf("service URL %q: %w", base, err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, fmt.Errorf("service URL %q: want https://host[/path] (or http://)", base)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("service URL %q: want no user, query or fragment", base)
	}
	if hc == nil {
		hc = &http.Client{CheckRedirect: checkRedirect}
	}
	id, err := newGUID()
	if err != nil {
		return nil, err
	}
	return &Client{base: u, http: hc, requestID: id}, nil
}

// checkRedirect follows at most maxRedirects redirects, never from https to
// plain http.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("more than %d redirects", maxRedirects)
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("redirect from https to " + req.URL.Scheme)
	}
	return nil
}

// newGUID returns a random (version 4) GUID, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func newGUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("client request id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// EndpointsURL returns the endpoints web method's URL for instance and service
// area, without the request ID: the list's source, as an apps file records it.
func (c *Client) EndpointsURL(instance, area string) string {
	u := c.base.JoinPath("endpoints", instance)
	u.RawQuery = url.Values{"ServiceAreas": {area}}.Encode()
	return u.String()
}

// Version asks the version web method for instance's latest version.
func (c *Client) Version(ctx context.Context, instance string) (Version, error) {
	body, err := c.get(ctx, c.base.JoinPath("version", instance), nil)
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(body, instance)
}

// Endpoints asks the endpoints web method for the sets of instance's service
// area (the service adds the Common area's).
func (c *Client) Endpoints(ctx context.Context, instance, area string) ([]EndpointSet, error) {
	body, err := c.get(ctx, c.base.JoinPath("endpoints", instance), url.Values{"ServiceAreas": {area}})
	if err != nil {
		return nil, err
	}
	return ParseEndpoints(body)
}

// get fetches u with the request ID and query added and returns a 200's body,
// refusing one over MaxResponse.
func (c *Client) get(ctx context.Context, u *url.URL, query url.Values) ([]byte, error) {
	if query == nil {
		query = url.Values{}
	}
	query.Set("ClientRequestId", c.requestID)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err // a *url.Error, which names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The status code only: the reason phrase is the server's text.
		return nil, fmt.Errorf("GET %s: HTTP %d %s", u.Redacted(), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if len(body) > MaxResponse {
		return nil, fmt.Errorf("GET %s: the response is larger than %d MiB", u.Redacted(), MaxResponse>>20)
	}
	return body, nil
}
