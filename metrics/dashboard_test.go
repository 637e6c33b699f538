package metrics

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

const dashboardPath = "../configs/grafana/dashboards/sockshaper.json"

// selector is one vector selector of a PromQL expression: a metric name and the
// text between its braces.
type selector struct {
	name     string
	matchers string
}

// promqlKeyword reports whether ident is never a metric name (an operator, a
// modifier or an aggregation, which may be followed by "by (...)" before its
// parenthesis) and whether a parenthesised label list follows it.
func promqlKeyword(ident string) (keyword, grouping bool) {
	switch ident {
	case "by", "without", "on", "ignoring", "group_left", "group_right":
		return true, true
	case "and", "or", "unless", "bool", "offset",
		"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar",
		"topk", "bottomk", "quantile", "count_values":
		return true, false
	}
	return false, false
}

// selectors scans a PromQL expression for vector selectors. It knows just enough
// PromQL for the dashboard: strings, numbers, ranges, functions and groupings.
func selectors(t *testing.T, expr string) []selector {
	t.Helper()
	var out []selector
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '[':
			i = skipPast(expr, i, ']')
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && isIdentChar(expr[i]) || i < len(expr) && expr[i] == '.' {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
			ident := expr[start:i]
			next := skipSpace(expr, i)
			keyword, grouping := promqlKeyword(ident)
			switch {
			case keyword && grouping && next < len(expr) && expr[next] == '(':
				i = skipPast(expr, next, ')')
			case keyword || next < len(expr) && expr[next] == '(':
				// an operator, or a function or aggregation called here
			case next < len(expr) && expr[next] == '{':
				end := skipPast(expr, next, '}')
				out = append(out, selector{ident, expr[next+1 : end-1]})
				i = end
			default:
				out = append(out, selector{name: ident})
			}
		case c == '{':
			t.Errorf("selector without a metric name in %q", expr)
			i = skipPast(expr, i, '}')
		default:
			i++
		}
	}
	return out
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func skipSpace(s string, i int) int {
	for i < len(s) && strings.ContainsRune(" \t\n", rune(s[i])) {
		i++
	}
	return i
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s) && s[i] != q; i++ {
		if s[i] == '\\' && q != '`' {
			i++
		}
	}
	return i + 1
}

// skipPast returns the index after the first close at or after i outside strings.
func skipPast(s string, i int, close byte) int {
	for i < len(s) && s[i] != close {
		if s[i] == '"' || s[i] == '\'' || s[i] == '`' {
			i = skipString(s, i)
			continue
		}
		i++
	}
	return i + 1
}

// seriesNames returns every series name New's collectors export after each
// recording method ran once: histogram families as _bucket, _sum and _count.
func seriesNames(t *testing.T) map[string]bool {
	m, reg := newTestMetrics(t, Options{PerUser: true, PerUserMaxUsers: 1, QuotaUsage: quotaUsage})
	exercise(m)
	m.Transferred("bob", "web", DirectionUpload, TransportTCP, 1)
	names := map[string]bool{}
	for name, mf := range gather(t, reg) {
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

func TestDashboardPanels(t *testing.T) {
	d, err := readDashboard(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("dashboard uid %q, title %q, schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	ids := map[int]bool{}
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no targets", p.Title)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("panel %q: target %q has an empty expr or a missing or repeated refId", p.Title, tg.RefID)
			}
			refIDs[tg.RefID] = true
		}
	}
}

func TestDashboardVariables(t *testing.T) {
	d, err := readDashboard(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("datasource variable: type %q query %s, want datasource/prometheus", v.Type, v.Query)
	}
	v := vars["instance"]
	if v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" ||
		!strings.Contains(string(v.Query), "label_values(sockshaper_sessions_total, instance)") {
		t.Errorf("instance variable: %+v", v)
	}
}

func TestDashboardQueriesUseRegisteredMetrics(t *testing.T) {
	d, err := readDashboard(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	known := seriesNames(t)
	used := map[string]bool{}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			sels := selectors(t, tg.Expr)
			if len(sels) == 0 {
				t.Errorf("panel %q: %q selects no metric", p.Title, tg.Expr)
			}
			for _, s := range sels {
				if !known[s.name] {
					t.Errorf("panel %q: %s is not a metric New registers", p.Title, s.name)
				}
				if !strings.Contains(s.matchers, `instance=~"$instance"`) {
					t.Errorf("panel %q: %s{%s} does not filter instance=~\"$instance\"", p.Title, s.name, s.matchers)
				}
				used[strings.TrimSuffix(s.name, "_bucket")] = true
			}
		}
	}
	for _, dm := range designTable() {
		if !used[dm.name] && !strings.HasPrefix(dm.name, "sockshaper_user_") {
			t.Errorf("no panel shows %s", dm.name)
		}
	}
}

func TestDashboardQueries(t *testing.T) {
	exprs, err := DashboardQueries(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) < 15 {
		t.Errorf("DashboardQueries returned %d queries, want one per target", len(exprs))
	}
	for _, e := range exprs {
		if strings.Contains(e, "$") {
			t.Errorf("query %q still holds a variable", e)
		}
	}
	if !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, `instance=~".*"`) && strings.Contains(e, "[1m]") }) {
		t.Error("no query with $instance and $__rate_interval expanded")
	}
	if _, err := DashboardQueries("testdata/missing.json"); err == nil {
		t.Error("DashboardQueries of a missing file: no error")
	}
}

func TestSelectors(t *testing.T) {
	if got := selectors(t, `sum by (le) (rate(x{a="b"}[1m]))`); !slices.Equal(got, []selector{{"x", `a="b"`}}) {
		t.Errorf("selectors = %+v, want x", got)
	}
	got := selectors(t, `histogram_quantile(0.9, sum by (le, app) (rate(a_bucket{x="}{[",y=~"$i"}[5m]))) / on(app) b + time() - 1e3 * c offset 5m`)
	want := []selector{{"a_bucket", `x="}{[",y=~"$i"`}, {name: "b"}, {name: "c"}}
	if !slices.Equal(got, want) {
		t.Errorf("selectors = %+v, want %+v", got, want)
	}
}

// TestDashboardShowsChallengesApart: a browser's request without credentials
// (the 407 challenge, result auth_required) is shown as a challenge of its
// own, and no panel about failed logins counts it.
func TestDashboardShowsChallengesApart(t *testing.T) {
	d, err := readDashboard(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var challenges bool
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			for _, s := range selectors(t, tg.Expr) {
				challenges = challenges || s.name == "sockshaper_sessions_total" &&
					strings.Contains(s.matchers, `result="`+ResultAuthRequired+`"`)
				if strings.Contains(s.matchers, `result="`+ResultAuthFailed+`"`) && s.name == "sockshaper_sessions_total" &&
					strings.Contains(s.matchers, ResultAuthRequired) {
					t.Errorf("panel %q counts challenges as failed logins: %s", p.Title, tg.Expr)
				}
			}
		}
	}
	if !challenges {
		t.Errorf("no panel shows sockshaper_sessions_total{result=%q} apart from failed logins", ResultAuthRequired)
	}
}
