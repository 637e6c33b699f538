package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sync"
	"testing"
)

// m365Server stands for Microsoft's endpoints web service: it answers
// /version/Worldwide and /endpoints/Worldwide with the bodies it holds (the
// recorded ones of internal/m365/testdata to start with) and remembers every
// request.
type m365Server struct {
	*httptest.Server
	mu        sync.Mutex
	version   []byte
	endpoints []byte
	handler   http.HandlerFunc // replaces the service when set
	requests  []*url.URL
}

func newM365Server(t *testing.T) *m365Server {
	t.Helper()
	s := &m365Server{
		version:   readTestdata(t, "../../internal/m365/testdata/version-worldwide.json"),
		endpoints: readTestdata(t, "../../internal/m365/testdata/endpoints-worldwide-skype.json"),
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func readTestdata(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (s *m365Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL)
	version, endpoints, h := s.version, s.endpoints, s.handler
	s.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	switch r.URL.Path {
	case "/version/Worldwide":
		w.Write(version)
	case "/endpoints/Worldwide":
		w.Write(endpoints)
	default:
		http.NotFound(w, r)
	}
}

// set replaces the bodies; nil keeps one.
func (s *m365Server) set(version, endpoints []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if version != nil {
		s.version = version
	}
	if endpoints != nil {
		s.endpoints = endpoints
	}
}

func (s *m365Server) setHandler(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

// paths returns the paths requested so far and forgets them.
func (s *m365Server) takeRequests() []*url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests
	s.requests = nil
	return r
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// withTeamsNetwork returns the recorded endpoints with network added to set 11
// (Optimize), as a later version of the list might.
func withTeamsNetwork(t *testing.T, endpoints []byte, network string) []byte {
	t.Helper()
	var sets []map[string]any
	if err := json.Unmarshal(endpoints, &sets); err != nil {
		t.Fatal(err)
	}
	for _, s := range sets {
		if s["id"] == float64(11) {
			s["ips"] = append(s["ips"].([]any), network)
		}
	}
	out, err := json.Marshal(sets)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
