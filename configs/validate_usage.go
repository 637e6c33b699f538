package configs

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// usage checks the time zone, windows, quotas, window limits and their state
// folder, and fills Config.Location and each window's parsed fields.
func (v *validator) usage(c *Config) {
	loc, err := LoadTimeZone(c.TimeZone)
	if err != nil {
		v.add(path("time_zone"), err, timeZoneProblem(c.TimeZone, err))
		loc = time.UTC
	}
	c.Location = loc
	v.windows(&c.Shaping, loc)
	v.quotas(c)
	v.during(&c.Shaping)
	v.groupOnly(path("shaping", "global"), c.Shaping.Global,
		"during is set on groups (shaping.groups.G.during) and app classes (shaping.apps.A.during)")
	for _, name := range slices.Sorted(maps.Keys(c.Shaping.Apps)) {
		p := path("shaping", "apps", name)
		for _, level := range []string{"per_user", "total"} {
			l := c.Shaping.Apps[name].PerUser
			if level == "total" {
				l = c.Shaping.Apps[name].Total
			}
			v.groupOnly(p.key(level), l, fmt.Sprintf(
				"an app class's window limits are set on the class: shaping.apps.%s.during.WINDOW.%s", name, level))
		}
	}
}

func timeZoneProblem(name string, err error) string {
	if strings.EqualFold(name, "local") {
		return err.Error()
	}
	return fmt.Sprintf("unknown time zone %q; use an IANA name such as Europe/Berlin, or UTC", name)
}

func (v *validator) windows(s *Shaping, loc *time.Location) {
	for _, name := range slices.Sorted(maps.Keys(s.Windows)) {
		p := path("shaping", "windows", name)
		w := s.Windows[name]
		if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			v.add(p, nil, `window name must be letters, digits, "_" and "-"`)
		}
		var err error
		if w.Weekdays, err = ParseDays(w.Days); err != nil {
			v.add(p.key("days"), err, err.Error())
		}
		if w.Spans, err = ParseHours(w.Hours); err != nil {
			v.add(p.key("hours"), err, err.Error())
		}
		w.Location = loc
		if w.TimeZone != "" {
			if w.Location, err = LoadTimeZone(w.TimeZone); err != nil {
				v.add(p.key("time_zone"), err, timeZoneProblem(w.TimeZone, err))
				w.Location = loc
			}
		}
		s.Windows[name] = w
	}
}

func (v *validator) quotas(c *Config) {
	s := &c.Shaping
	var first fieldPath // the first allowance, where a missing state_dir is reported
	for _, name := range slices.Sorted(maps.Keys(s.Groups)) {
		q := s.Groups[name].Quota
		if q == nil {
			continue
		}
		p := path("shaping", "groups", name, "quota")
		v.quota(p, *q)
		switch {
		case !q.Limited():
			v.add(p, nil, "sets neither daily nor monthly; give an allowance or remove the quota")
		case first == nil:
			first = p
		}
	}
	for _, user := range slices.Sorted(maps.Keys(s.UserQuotas)) {
		p := path("shaping", "user_quotas", user)
		q := s.UserQuotas[user]
		if user == "" {
			v.add(p, nil, "user name must not be empty")
		}
		v.quota(p, q)
		switch {
		case !q.Limited() && q.OverRate != 0:
			v.add(p.key("over_rate"), nil, "applies over an allowance, and this quota sets neither daily nor monthly ({} exempts the user)")
		case q.Limited() && first == nil:
			first = p
		}
	}
	if first != nil && c.StateDir == "" {
		v.add(first, nil, "a quota needs state_dir, the folder where usage is kept across restarts")
	}
}

// quota checks a Quota built in Go; a parsed one cannot be negative.
func (v *validator) quota(p fieldPath, q Quota) {
	for _, f := range []struct {
		key string
		n   int64
	}{{"daily", int64(q.Daily)}, {"monthly", int64(q.Monthly)}, {"over_rate", int64(q.OverRate)}} {
		if f.n < 0 {
			v.add(p.key(f.key), nil, "must not be negative")
		}
	}
}

// groupOnly refuses a quota or window limits on a limit that is not a group's.
func (v *validator) groupOnly(p fieldPath, l Limit, during string) {
	if l.Quota != nil {
		v.add(p.key("quota"), nil, "quotas are set on groups (shaping.groups.G.quota) and users (shaping.user_quotas)")
	}
	if l.During != nil {
		v.add(p.key("during"), nil, during)
	}
}

func (v *validator) during(s *Shaping) {
	windows := slices.Sorted(maps.Keys(s.Windows))
	for _, group := range slices.Sorted(maps.Keys(s.Groups)) {
		d := s.Groups[group].During
		for _, w := range slices.Sorted(maps.Keys(d)) {
			p := path("shaping", "groups", group, "during", w)
			v.windowRef(p, w, windows)
			v.windowLimit(p, d[w], true)
		}
	}
	for _, app := range slices.Sorted(maps.Keys(s.Apps)) {
		d := s.Apps[app].During
		for _, w := range slices.Sorted(maps.Keys(d)) {
			p := path("shaping", "apps", app, "during", w)
			v.windowRef(p, w, windows)
			if d[w].PerUser.Empty() && d[w].Total.Empty() {
				v.add(p, nil, "changes nothing; set per_user or total limits")
			}
			v.windowLimit(p.key("per_user"), d[w].PerUser, false)
			v.windowLimit(p.key("total"), d[w].Total, false)
		}
	}
}

func (v *validator) windowRef(p fieldPath, name string, windows []string) {
	if slices.Contains(windows, name) {
		return
	}
	if len(windows) == 0 {
		v.add(p, nil, fmt.Sprintf("window %q is not defined: shaping.windows is empty", name))
		return
	}
	v.add(p, nil, fmt.Sprintf("window %q is not defined under shaping.windows (defined: %s)", name, strings.Join(windows, ", ")))
}

// windowLimit checks a WindowLimit; a parsed one cannot be negative.
func (v *validator) windowLimit(p fieldPath, w WindowLimit, needSome bool) {
	if needSome && w.Empty() {
		v.add(p, nil, "changes nothing; set upload, download or burst")
	}
	if w.Upload != nil && *w.Upload < 0 {
		v.add(p.key("upload"), nil, "must not be negative")
	}
	if w.Download != nil && *w.Download < 0 {
		v.add(p.key("download"), nil, "must not be negative")
	}
	if w.Burst != nil && *w.Burst < 0 {
		v.add(p.key("burst"), nil, "must not be negative")
	}
}

// dscp checks an app class's marks.
func (v *validator) dscp(p fieldPath, c *AppClass) {
	if c.DSCP > MaxDSCP {
		v.add(p.key("dscp"), nil, "must be a code point from 0 to 63")
	}
	if c.DSCPToClient && c.DSCP == 0 {
		v.add(p.key("dscp_to_client"), nil, "marks packets toward the client with dscp, which this class does not set")
	}
}
