package m365

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestParseEndpoints(t *testing.T) {
	for _, tt := range []struct {
		in   string
		sets int
		err  string
	}{
		{`[]`, 0, ""},
		{` [{"id":11,"serviceArea":"Skype","future":{"x":[1]},"ips":["52.112.0.0/14"]}] `, 1, ""},
		{`{"id":11}`, 0, "not a JSON array"},
		{``, 0, "not a JSON array"},
		{`[{"id":11}] [{"id":12}]`, 0, "unexpected data after the JSON value"},
		{`[{"id":11}] x`, 0, "unexpected data after the JSON value"},
		{`[{"id":"11"}]`, 0, "cannot unmarshal string"},
		{`[{"id":1e99}]`, 0, "cannot unmarshal number"},
		{`[{"ips":"52.112.0.0/14"}]`, 0, "cannot unmarshal string"},
		{`[{"id":11}`, 0, "unexpected EOF"},
		{"[" + strings.Repeat(`{},`, maxSets) + "{}]", 0, "10001 endpoint sets, more than the 10000 accepted"},
	} {
		sets, err := ParseEndpoints([]byte(tt.in))
		switch {
		case tt.err == "" && (err != nil || len(sets) != tt.sets):
			t.Errorf("%.40q: %d sets, %v", tt.in, len(sets), err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%.40q: error %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		in, err string
	}{
		{`{"instance":"Worldwide","latest":"2025013000"}`, ""},
		{`{"instance":"worldwide","latest":"2025013000","versions":["2025013000"]}`, ""},
		{`{"instance":"China","latest":"2025013000"}`, `the answer is for instance "China", not Worldwide`},
		{`{"instance":"Worldwide","latest":"202501300"}`, "not a version of ten digits"},
		{`{"instance":"Worldwide","latest":"20250130ab"}`, "not a version of ten digits"},
		{`{"instance":"Worldwide","latest":2025013000}`, "cannot unmarshal number"},
		{`[{"instance":"Worldwide","latest":"2025013000"}]`, "not a JSON object"},
		{`{"instance":"Worldwide","latest":"2025013000"}{}`, "unexpected data"},
	} {
		v, err := ParseVersion([]byte(tt.in), "Worldwide")
		switch {
		case tt.err == "" && (err != nil || v != Version{"Worldwide", "2025013000"}):
			t.Errorf("%s: %+v, %v", tt.in, v, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestNewClient(t *testing.T) {
	for base, want := range map[string]string{
		"https://endpoints.office.com":        "",
		"http://127.0.0.1:8080/mirror/o365":   "",
		"ftp://endpoints.office.com":          "want https://host",
		"endpoints.office.com":                "want https://host",
		"https://":                            "want https://host",
		"https://u:p@endpoints.office.com":    "want no user, query or fragment",
		"https://endpoints.office.com/?x=1":   "want no user, query or fragment",
		"https://endpoints.office.com/#frag":  "want no user, query or fragment",
		"https://endpoints.office.com/%zz":    "invalid URL escape",
		"https://endpoints.office.com\n/path": "invalid control character",
	} {
		_, err := NewClient(base, nil)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", base, err, want)
		}
	}
	c, err := NewClient("http://127.0.0.1:8080/mirror/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.EndpointsURL("Worldwide", "Skype"); got != "http://127.0.0.1:8080/mirror/endpoints/Worldwide?ServiceAreas=Skype" {
		t.Errorf("endpoints URL %s", got)
	}
	d, _ := NewClient(DefaultBase, nil)
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !guid.MatchString(c.requestID) || c.requestID == d.requestID {
		t.Errorf("request IDs %q and %q: want two random GUIDs", c.requestID, d.requestID)
	}
}

// TestClientRedirects: a redirect within https is followed, one to plain http
// is refused, and so is a loop.
func TestClientRedirects(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"instance":"Worldwide","latest":"2025013000"}`))
	}))
	defer plain.Close()
	var tls *httptest.Server
	tls = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version/Worldwide":
			http.Redirect(w, r, tls.URL+"/moved/version/Worldwide?"+r.URL.RawQuery, http.StatusFound)
		case "/moved/version/Worldwide":
			w.Write([]byte(`{"instance":"Worldwide","latest":"2025013000"}`))
		case "/version/USGovDoD":
			http.Redirect(w, r, plain.URL+"/version/Worldwide", http.StatusFound)
		default:
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}
	}))
	defer tls.Close()
	hc := tls.Client()
	hc.CheckRedirect = checkRedirect
	c, err := NewClient(tls.URL, hc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if v, err := c.Version(ctx, "Worldwide"); err != nil || v.Latest != "2025013000" {
		t.Errorf("redirect within https: %+v, %v", v, err)
	}
	if _, err := c.Version(ctx, "USGovDoD"); err == nil || !strings.Contains(err.Error(), "redirect from https to http") {
		t.Errorf("redirect to http: %v", err)
	}
	if _, err := c.Version(ctx, "China"); err == nil || !strings.Contains(err.Error(), "more than 5 redirects") {
		t.Errorf("redirect loop: %v", err)
	}
}

// TestClientResponseBound: a body of exactly MaxResponse bytes is read, one
// byte more is refused.
func TestClientResponseBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := MaxResponse // Worldwide's answer; one byte more for China's
		if r.URL.Path == "/endpoints/China" {
			size++
		}
		w.Write([]byte("[" + strings.Repeat(" ", size-2) + "]"))
	}))
	defer srv.Close()
	c, _ := NewClient(srv.URL, nil)
	if sets, err := c.Endpoints(context.Background(), "Worldwide", "Skype"); err != nil || len(sets) != 0 {
		t.Errorf("%d bytes: %v", MaxResponse, err)
	}
	if _, err := c.Endpoints(context.Background(), "China", "Skype"); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("%d bytes: %v", MaxResponse+1, err)
	}
}

func TestInstance(t *testing.T) {
	if in, err := Instance("usgovgcchigh"); err != nil || in != "USGovGCCHigh" {
		t.Errorf("%q, %v", in, err)
	}
	if _, err := Instance("Germany"); err == nil || !strings.Contains(err.Error(), "Worldwide, USGovDoD, USGovGCCHigh, China") {
		t.Errorf("Germany: %v", err)
	}
}
