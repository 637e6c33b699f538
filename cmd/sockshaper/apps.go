package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/m365"
)

// serviceArea is the endpoints service's area of Teams (and Skype for Business).
const serviceArea = "Skype"

// maxWarnings bounds the skipped values printed; the rest are counted.
const maxWarnings = 20

// appsOptions are the flags of `sockshaper apps update-m365`.
type appsOptions struct {
	instance   string
	url        string
	out        string
	categories string
	class      string
	timeout    time.Duration
}

// appsFlags declares the flags of `sockshaper apps update-m365`.
func appsFlags(fs *flag.FlagSet, o *options) {
	a := &o.apps
	fs.StringVar(&a.out, "out", "", "apps `FILE` to write (required); name it in the config's apps_file. "+
		"Written whole or not at all: on any error the old file stays")
	fs.StringVar(&a.instance, "instance", "Worldwide", "service `INSTANCE`: Worldwide, USGovDoD, USGovGCCHigh or China")
	fs.StringVar(&a.url, "url", m365.DefaultBase, "`BASE` URL of Microsoft's endpoints web service (or a mirror)")
	fs.StringVar(&a.categories, "categories", "Optimize,Allow", "endpoint `CATEGORIES` to take, comma-separated: Optimize, Allow or both")
	fs.StringVar(&a.class, "class", "skype", "app `CLASS` the rules are for; the config's class of that name takes them")
	fs.DurationVar(&a.timeout, "timeout", 30*time.Second, "give up after `DURATION` (both requests together); the old file stays")
}

// m365Job is a checked invocation of update-m365.
type m365Job struct {
	appsOptions
	categories []string
}

// check returns the job the flags describe, or the problem with them.
func (o appsOptions) check() (m365Job, string) {
	j := m365Job{appsOptions: o}
	var err error
	if j.instance, err = m365.Instance(o.instance); err != nil {
		return j, "-instance: " + err.Error()
	}
	for c := range strings.SplitSeq(o.categories, ",") {
		c, err := m365.Category(strings.TrimSpace(c))
		if err != nil {
			return j, "-categories: " + err.Error()
		}
		if !slices.Contains(j.categories, c) {
			j.categories = append(j.categories, c)
		}
	}
	switch {
	case o.out == "":
		return j, "-out FILE is required"
	case o.timeout <= 0:
		return j, "-timeout must be positive"
	case o.class == "" || o.class == "other" || strings.Trim(o.class, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "":
		return j, `-class: a class name is lowercase letters, digits, "_" and "-", and not "other"`
	}
	return j, ""
}

// updateM365 writes the apps file of -out from Microsoft's endpoints web
// service. Exit 0 written (or already current), 1 failed with the old file
// kept, 2 wrong flags.
func updateM365(inv invocation) int {
	job, problem := inv.opts.apps.check()
	if problem != "" {
		return inv.usage(problem)
	}
	ctx, cancel := context.WithTimeout(context.Background(), job.timeout)
	defer cancel()
	msg, err := job.run(ctx, time.Now(), inv.stderr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no complete answer within -timeout %v: %w", job.timeout, err)
		}
		fmt.Fprintf(inv.stderr, "sockshaper apps update-m365: %v; %s left unchanged\n", err, job.out)
		return 1
	}
	fmt.Fprintln(inv.stdout, msg)
	return 0
}

// run asks the service and writes the file, returning what it did. When the
// file already holds the service's latest version for the same request, the
// endpoints are not asked again (Microsoft asks clients to call the endpoints
// method only for a new version): the file is rewritten with the new
// generation time, which records that it was checked.
func (j m365Job) run(ctx context.Context, now time.Time, warn io.Writer) (string, error) {
	client, err := m365.NewClient(j.url, nil)
	if err != nil {
		return "", err
	}
	v, err := client.Version(ctx, j.instance)
	if err != nil {
		return "", err
	}
	source := configs.AppsSource{URL: client.EndpointsURL(j.instance, serviceArea), Instance: j.instance, Version: v.Latest,
		Generated: now.UTC().Format(time.RFC3339), Categories: j.categories}
	old, _ := configs.LoadAppsFile(j.out) // a missing or broken old file is replaced
	if current(old, source, j.class) {
		source.EndpointSets = old.Source.EndpointSets
		if err := writeAppsFile(j.out, j.comment(), configs.AppsFile{Source: source, Apps: old.Apps}); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: version %s is current; generation time renewed", j.out, v.Latest), nil
	}
	sets, err := client.Endpoints(ctx, j.instance, serviceArea)
	if err != nil {
		return "", err
	}
	r, err := m365.Convert(sets, m365.Options{ServiceArea: serviceArea, Categories: j.categories})
	if err != nil {
		return "", err
	}
	warnSkipped(warn, r)
	source.EndpointSets = r.Sets
	class := ruleClass(j.class, r.Rules)
	if err := writeAppsFile(j.out, j.comment(), configs.AppsFile{Source: source, Apps: configs.AppClasses{class}}); err != nil {
		return "", err
	}
	return summary(j, v.Latest, r, changes(old, class)), nil
}

// current reports whether old is the file run would write for source and
// class, but for its generation time.
func current(old *configs.AppsFile, source configs.AppsSource, class string) bool {
	return old != nil && old.Source.URL == source.URL && old.Source.Instance == source.Instance &&
		old.Source.Version == source.Version && slices.Equal(old.Source.Categories, source.Categories) &&
		len(old.Apps) == 1 && old.Apps[0].Name == class
}

func ruleClass(name string, r m365.Rules) configs.AppClass {
	c := configs.AppClass{Name: name, Domains: r.Domains, Ports: r.Ports}
	for _, p := range r.Networks {
		c.Networks = append(c.Networks, p.String())
	}
	return c
}

// comment is the written file's head comment.
func (j m365Job) comment() string {
	return fmt.Sprintf(`Microsoft 365 endpoints of service area %s (Teams), categories %s, as sockshaper's
app class %q. Written by `+"`sockshaper apps update-m365`"+`; the next run replaces this
file, so do not edit it. Name it in the config's apps_file: each class here replaces the
domains, networks and ports of the config's class of that name (or the built-in one).`,
		serviceArea, strings.Join(j.categories, " and "), j.class)
}

// warnSkipped lists the values the service sent that were not taken.
func warnSkipped(w io.Writer, r m365.Result) {
	for i, s := range r.Skipped {
		if i == maxWarnings {
			break
		}
		fmt.Fprintln(w, "warning:", s)
	}
	if more := r.SkippedTotal - min(len(r.Skipped), maxWarnings); more > 0 {
		fmt.Fprintf(w, "warning: %d more values skipped\n", more)
	}
}

func summary(j m365Job, version string, r m365.Result, changed string) string {
	sets := make([]string, len(r.Sets))
	for i, id := range r.Sets {
		sets[i] = fmt.Sprint(id)
	}
	return fmt.Sprintf("%s: class %s, %d names, %d networks, %d port ranges from endpoint sets %s (%s version %s; "+
		"%d sets of other areas and %d of other categories left out)%s", j.out, j.class, len(r.Domains), len(r.Networks),
		len(r.Ports), strings.Join(sets, ", "), j.instance, version, r.OtherAreas, r.OtherCategories, changed)
}
