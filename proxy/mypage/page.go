// Package mypage renders a user's own usage page, /my-usage on the proxy
// port: their name and group, today's and this month's bytes, their quota as a
// bar, their rate and limit, their open sessions by app. It shows one user's
// data, the logged-in user's, and takes no user name from the request.
package mypage

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the page and its style
	"encoding/base64"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
)

// Path is where the proxy serves the page, in origin form on its own port.
const Path = "/my-usage"

var (
	//go:embed page.html
	pageHTML string
	//go:embed page.css
	pageCSS string
)

// View is what the page shows, of one user.
type View struct {
	User, Group string
	Day, Month  string // today and this month in the usage time zone
	TimeZone    string
	Generated   string
	Report      usage.UserReport
	Limit       configs.Limit // the user's own limit now; zero rates unlimited
	Apps        []shaping.AppSessions
	CSS         template.CSS
}

// Collect gathers who's view at now from the usage store and the shaper;
// either may be nil (no usage counted, no shaping).
func Collect(store *usage.Store, shaper *shaping.Registry, who shaping.Who, now time.Time) View {
	v := View{User: who.User, Group: who.Group, Generated: now.UTC().Format("2006-01-02 15:04:05 UTC"), TimeZone: "UTC"}
	v.Day, v.Month = now.UTC().Format("2006-01-02"), now.UTC().Format("2006-01")
	if store != nil {
		v.Report = store.UserReport(who.User, now)
		v.Day, v.Month, v.TimeZone = store.Period(now)
		if v.Report.Group != "" {
			v.Group = v.Report.Group
		}
	}
	if shaper != nil {
		sv := shaper.UserView(who)
		v.Limit, v.Apps = sv.Limit, sv.Apps
		if sv.Group != "" {
			v.Group = sv.Group
		}
	}
	return v
}

// style is the page's style sheet: page.css and the bar widths, as classes
// (w0 to w100), since the policy allows no inline style attribute.
func style() string {
	var b strings.Builder
	b.WriteString(pageCSS)
	for p := 0; p <= 100; p++ {
		fmt.Fprintf(&b, ".w%d{width:%d%%}", p, p)
	}
	return b.String()
}

// ContentSecurityPolicy is the page's policy: nothing but its own style
// sheet, by hash; no script, image, frame, form or base.
func ContentSecurityPolicy() string {
	sum := sha256.Sum256([]byte(style()))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// Headers are the fields the page is served with besides its length.
func Headers() [][2]string {
	return [][2]string{
		{"Content-Type", "text/html; charset=utf-8"},
		{"Content-Security-Policy", ContentSecurityPolicy()},
		{"Cache-Control", "no-store"},
		{"X-Content-Type-Options", "nosniff"},
		{"Referrer-Policy", "no-referrer"},
	}
}

// Render returns the page of v.
func Render(v View) ([]byte, error) {
	t, err := template.New("page").Funcs(funcMap()).Parse(pageHTML)
	if err != nil {
		return nil, fmt.Errorf("my-usage page: %w", err)
	}
	v.CSS = template.CSS(style())
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("my-usage page: %w", err)
	}
	return b.Bytes(), nil
}

// allowanceRow is one quota period for the bar template.
type allowanceRow struct {
	Name    string
	A       *usage.Allowance
	Percent int
}

// funcMap is the template's functions: units as people read them.
func funcMap() template.FuncMap {
	return template.FuncMap{
		"bytes": formatBytes,
		"rate":  func(r any) string { return formatRate(toFloat(r)) },
		"limit": func(r configs.Rate) string {
			if r <= 0 {
				return "unlimited"
			}
			return formatRate(float64(r))
		},
		"allowance": func(name string, a *usage.Allowance) allowanceRow {
			p := 100
			if a.Limit > 0 {
				p = int(min(100, a.Used*100/a.Limit))
			}
			return allowanceRow{Name: name, A: a, Percent: p}
		},
	}
}

func toFloat(r any) float64 {
	switch x := r.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

// formatBytes writes n bytes in binary units ("1.5 MiB").
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, i := float64(n), -1
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + string("KMGTPE"[i]) + "iB"
}

// formatRate writes bytes per second as bits per second, as link speeds are
// quoted ("16.0 Mbit/s").
func formatRate(bps float64) string {
	bits := bps * 8
	for _, u := range []struct {
		div  float64
		name string
	}{{1e9, "Gbit/s"}, {1e6, "Mbit/s"}, {1e3, "kbit/s"}} {
		if bits >= u.div {
			return strconv.FormatFloat(bits/u.div, 'f', 1, 64) + " " + u.name
		}
	}
	return strconv.FormatFloat(bits, 'f', 0, 64) + " bit/s"
}
