package usage

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func getReport(t *testing.T, url string) Report {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %s, %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	var r Report
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHandler(t *testing.T) {
	c := newClock("2026-03-10T12:00:00Z")
	s := newStore(t, quotaConfig(t, ""), c, nil)
	a, _ := s.Admit("alice", "socks5", "connect")
	b, _ := s.Admit("alice", "socks5", "connect")
	u, _ := s.Admit("alice", "socks5", "udp_associate")
	h, _ := s.Admit("alice", "http", "connect")
	defer a.Close()
	defer u.Close()
	defer h.Close()
	b.Close()
	a.Throttled(1500 * time.Millisecond)
	s.Add("alice", 100, 300)
	s.Add("bob", 800, 900) // over his daily 1000
	s.Add("old", 1, 0)
	c.advance(RecentlyActive + time.Second)
	s.Add("bob", 1, 0)

	srv := httptest.NewServer(Handler(s, func() []string { return []string{"lectures"} }))
	defer srv.Close()
	r := getReport(t, srv.URL)
	if r.Day != "2026-03-10" || r.Month != "2026-03" || r.TimeZone != "UTC" || !slices.Equal(r.WindowsOpen, []string{"lectures"}) {
		t.Errorf("report header %+v", r)
	}
	var names []string
	for _, u := range r.Users {
		names = append(names, u.User)
	}
	if !slices.Equal(names, []string{"bob", "alice"}) {
		t.Fatalf("users %v, want bob (heaviest today) and alice (live sessions); old is not recent", names)
	}
	bob, alice := r.Users[0], r.Users[1]
	wantSessions := []SessionCount{{"http", "connect", 1}, {"socks5", "connect", 1}, {"socks5", "udp_associate", 1}}
	if !alice.Active || !slices.Equal(alice.Sessions, wantSessions) || alice.ThrottledSeconds != 1.5 ||
		alice.Today != (Bytes{100, 300, 400}) || alice.Group != "staff" {
		t.Errorf("alice %+v", alice)
	}
	if alice.Quota == nil || *alice.Quota.Daily != (Allowance{1000, 400, 600}) || alice.Quota.Over {
		t.Errorf("alice's quota %+v", alice.Quota)
	}
	if bob.Active || bob.Quota == nil || !bob.Quota.Over || bob.Quota.OverPeriod != Daily || bob.Quota.OverRate != 100 ||
		bob.Quota.Daily.Left != 0 || bob.Quota.Monthly.Left != 5000-1701 {
		t.Errorf("bob %+v quota %+v", bob, bob.Quota)
	}
	if all := getReport(t, srv.URL+"?all=1"); len(all.Users) != 3 {
		t.Errorf("?all=1 lists %d users, want 3", len(all.Users))
	}
}
