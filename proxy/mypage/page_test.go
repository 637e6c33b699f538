package mypage

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
)

// TestRender: the page shows the figures of its view, escaped, with a quota
// bar per period, and nothing of a view's absent parts.
func TestRender(t *testing.T) {
	quota := &usage.QuotaReport{
		Daily:   &usage.Allowance{Limit: 1 << 30, Used: 256 << 20, Left: 768 << 20},
		Monthly: &usage.Allowance{Limit: 10 << 30, Used: 10 << 30, Left: 0},
		Over:    true, OverPeriod: "monthly", OverRate: 32000,
	}
	for _, tc := range []struct {
		name    string
		v       View
		want    []string
		notWant []string
	}{
		{"quota and apps", View{User: "alice", Group: "students", Day: "2026-12-07", Month: "2026-12",
			Report: usage.UserReport{Today: usage.Bytes{Upload: 1024, Download: 3 << 20, Total: 3<<20 + 1024},
				Month: usage.Bytes{Total: 5 << 30}, Quota: quota, Rate: usage.Rates{Download: 250000}},
			Limit: configs.Limit{Download: 2_000_000},
			Apps:  []shaping.AppSessions{{App: "skype", Sessions: 2}, {App: "other", Sessions: 1}}},
			[]string{`<dd id="user">alice</dd>`, `<dd id="group">students</dd>`, "3.0 MiB", "5.0 GiB",
				"256.0 MiB of 1.0 GiB used, 768.0 MiB left", `class="w25"`, `class="bar over"`, `class="w100"`,
				"Over your monthly quota: held to 256.0 kbit/s", "2.0 Mbit/s down", "16.0 Mbit/s down, unlimited up",
				"<td>skype</td><td>2</td>", "<td>other</td><td>1</td>"},
			[]string{"No quota applies", "None right now"}},
		{"no quota, no sessions, unlimited", View{User: "bob"},
			[]string{`<dd id="user">bob</dd>`, `<dd id="group">-</dd>`, "No quota applies to you.", "None right now.",
				"unlimited down, unlimited up", "0 B"},
			[]string{`class="bar`, "Over your"}},
		{"a name is escaped", View{User: `<script>alert(1)</script>`, Group: `"g"`},
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;g&#34;"},
			[]string{"<script>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Render(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			page := string(b)
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(page, w) {
					t.Errorf("page has %q", w)
				}
			}
		})
	}
}

// TestPolicyAllowsTheStyleOnly: the page's one style element is the one the
// policy's hash allows; the page has no script, no inline style attribute,
// no external reference, and a viewport for phones.
func TestPolicyAllowsTheStyleOnly(t *testing.T) {
	b, err := Render(View{User: "alice", Report: usage.UserReport{Quota: &usage.QuotaReport{
		Daily: &usage.Allowance{Limit: 100, Used: 37, Left: 63}}}})
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	styles := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(page, -1)
	if len(styles) != 1 {
		t.Fatalf("%d style elements, want 1", len(styles))
	}
	sum := sha256.Sum256([]byte(styles[0][1]))
	csp := ContentSecurityPolicy()
	if !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.HasPrefix(csp, "default-src 'none';") {
		t.Errorf("policy %q does not allow the page's style sheet by hash", csp)
	}
	for _, bad := range []string{"<script", " style=", "http://", "https://", "src=", "<link", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("page has %q", bad)
		}
	}
	if !strings.Contains(page, `<meta name="viewport" content="width=device-width, initial-scale=1">`) || !strings.Contains(page, ".w37{width:37%}") {
		t.Error("page lacks the viewport or the bar widths")
	}
	h := map[string]string{}
	for _, f := range Headers() {
		h[f[0]] = f[1]
	}
	if h["Cache-Control"] != "no-store" || h["Content-Security-Policy"] != csp || !strings.HasPrefix(h["Content-Type"], "text/html") {
		t.Errorf("headers %v", h)
	}
}

// TestCollectShowsOneUser: the view holds the user asked for and their own
// figures, never another user's.
func TestCollectShowsOneUser(t *testing.T) {
	cfg, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Shaping.Groups["students"] = configs.Limit{Upload: 500_000, Download: 2_000_000,
		Quota: &configs.Quota{Daily: 1 << 30}}
	store, err := usage.New(cfg, usage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store.Add("alice", 1000, 5000)
	store.Add("bob", 7777777, 8888888)
	sh := shaping.NewRegistry(cfg.Shaping)
	lease := sh.Acquire(shaping.Who{User: "alice"}, "skype")
	defer lease.Release()
	bobs := sh.Acquire(shaping.Who{User: "bob"}, "web")
	defer bobs.Release()

	v := Collect(store, sh, shaping.Who{User: "alice"}, time.Now())
	if v.User != "alice" || v.Group != "students" || v.Report.Today.Total != 6000 || v.Report.Quota == nil ||
		v.Report.Quota.Daily.Used != 6000 || v.Limit.Download != 2_000_000 {
		t.Errorf("alice's view: %+v", v)
	}
	if len(v.Apps) != 1 || v.Apps[0] != (shaping.AppSessions{App: "skype", Sessions: 1}) {
		t.Errorf("alice's sessions by app: %v, want skype 1", v.Apps)
	}
	page, _ := Render(v)
	for _, bob := range []string{"bob", "7777777", "8888888", "web", "16.0 MiB"} {
		if strings.Contains(string(page), bob) {
			t.Errorf("alice's page shows %q", bob)
		}
	}
	if v := Collect(store, sh, shaping.Who{User: "carol"}, time.Now()); v.Report.Today.Total != 0 || v.User != "carol" {
		t.Errorf("a user with no usage: %+v", v)
	}
	if v := Collect(nil, nil, shaping.Who{User: "dave"}, time.Now()); v.User != "dave" {
		t.Errorf("without a store or shaper: %+v", v)
	}
}
