package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// dashboard is the part of a Grafana dashboard JSON model that tests and
// [DashboardQueries] read. Unknown fields are ignored.
type dashboard struct {
	Title         string     `json:"title"`
	UID           string     `json:"uid"`
	SchemaVersion int        `json:"schemaVersion"`
	Panels        []panel    `json:"panels"`
	Templating    templating `json:"templating"`
}

// templating holds the dashboard's variables.
type templating struct {
	List []variable `json:"list"`
}

// variable is one dashboard variable. Query is a string or an object depending on
// the variable's type, so it is kept raw.
type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
}

// panel is one panel; a row panel holds the panels it hides when collapsed.
type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []target       `json:"targets"`
	Panels     []panel        `json:"panels"`
}

// target is one query of a panel.
type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

// datasourceRef names a data source by type and uid.
type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// readDashboard parses the Grafana dashboard JSON file at path.
func readDashboard(path string) (*dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dashboard: %w", err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	return &d, nil
}

// allPanels returns every panel of d in order, the panels of collapsed rows
// included, rows themselves included.
func (d *dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// DashboardQueries reads the Grafana dashboard JSON file at path and returns the
// PromQL expression of every target of every panel (collapsed rows included), in
// panel order, ready to evaluate on Prometheus directly: the dashboard variables
// $instance and ${instance} are replaced by .* (all instances) and $__rate_interval
// and ${__rate_interval} by 1m. It returns an error if the file cannot be read or
// parsed, or if a target has an empty expression.
func DashboardQueries(path string) ([]string, error) {
	d, err := readDashboard(path)
	if err != nil {
		return nil, err
	}
	expand := strings.NewReplacer(
		"${instance}", ".*",
		"$instance", ".*",
		"${__rate_interval}", "1m",
		"$__rate_interval", "1m",
	)
	var exprs []string
	for _, p := range d.allPanels() {
		for _, t := range p.Targets {
			if strings.TrimSpace(t.Expr) == "" {
				return nil, fmt.Errorf("dashboard %s: panel %q target %s: empty expr", path, p.Title, t.RefID)
			}
			exprs = append(exprs, expand.Replace(t.Expr))
		}
	}
	return exprs, nil
}
