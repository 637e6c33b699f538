package m365

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/sockshaper/sockshaper/configs"
)

// The bounds of one class's rules, after duplicates and names or networks that
// others cover are removed. Microsoft's Skype area has about a dozen networks
// and five names; a class of thousands would make every session's
// classification a long scan, so a list that large is refused, not trusted.
const (
	MaxNetworks = 4096
	MaxDomains  = 4096
)

// maxSkipped bounds the skipped values a Result lists; the rest are counted.
const maxSkipped = 100

// Options choose the endpoint sets [Convert] turns into rules.
type Options struct {
	// ServiceArea is the service area whose sets are used, such as "Skype"
	// (compared without regard to case).
	ServiceArea string
	// Categories are the categories whose sets are used: "Optimize", "Allow" or
	// both. "Default" sets are never used: they hold shared names (CDNs,
	// aka.ms, certificate authorities) that are not the service area's own.
	Categories []string
}

// Rules are the match rules of one app class.
type Rules struct {
	// Domains are name suffixes, sorted, none under another of the list.
	Domains []string
	// Networks are prefixes, masked and sorted, none inside another of the list.
	Networks []netip.Prefix
	// Ports are the ports of the sets used, merged, TCP before UDP. Empty when
	// no set used names a port: the rules then match on any port.
	Ports []configs.PortRange
	// Sets are the IDs of the endpoint sets the rules come from, sorted.
	Sets []int64
}

// Skipped is a value of an endpoint set that [Convert] left out.
type Skipped struct {
	Set    int64  // the endpoint set's ID
	Value  string // the value as the service sent it
	Reason string
}

// String says which value was skipped and why, the value quoted and cut short.
func (s Skipped) String() string {
	return fmt.Sprintf("endpoint set %d: %s skipped: %s", s.Set, quote(s.Value), s.Reason)
}

// Result is what [Convert] made of a list of endpoint sets.
type Result struct {
	Rules
	// Skipped are the first values left out; SkippedTotal counts them all.
	Skipped      []Skipped
	SkippedTotal int
	// OtherAreas and OtherCategories count the sets not used because of their
	// service area or their category.
	OtherAreas      int
	OtherCategories int
}

// Category returns the category named s (case-insensitive) as the service
// spells it: "Optimize" or "Allow". "Default" and anything else are errors.
func Category(s string) (string, error) {
	for _, c := range []string{"Optimize", "Allow"} {
		if strings.EqualFold(s, c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("category %q: want Optimize or Allow (Default sets hold names other services share)", s)
}

// canonicalCategory returns s as Category spells it, or s when it is not
// Optimize or Allow.
func canonicalCategory(s string) string {
	if c, err := Category(s); err == nil {
		return c
	}
	return s
}

// Convert turns the sets of o's service area and categories into rules. Values
// that cannot be safe rules are skipped and listed in the Result; a list that
// yields no name and no network, or more than [MaxDomains] names or
// [MaxNetworks] networks, is an error.
func Convert(sets []EndpointSet, o Options) (Result, error) {
	want := make(map[string]bool)
	for _, c := range o.Categories {
		c, err := Category(c)
		if err != nil {
			return Result{}, err
		}
		want[c] = true
	}
	if len(want) == 0 {
		return Result{}, fmt.Errorf("no category chosen: want Optimize, Allow or both")
	}
	var r Result
	b := newBuilder(&r)
	for i := range sets {
		s := &sets[i]
		switch {
		case !strings.EqualFold(s.ServiceArea, o.ServiceArea):
			r.OtherAreas++
		case !want[canonicalCategory(s.Category)]:
			r.OtherCategories++
		default:
			b.add(s)
		}
	}
	if err := b.finish(); err != nil {
		return Result{}, err
	}
	if len(r.Domains)+len(r.Networks) == 0 {
		return Result{}, fmt.Errorf("no usable name or network in the %s sets of category %s",
			o.ServiceArea, strings.Join(slices.Sorted(maps.Keys(want)), " or "))
	}
	return r, nil
}

// builder collects one class's rules from the sets it is given.
type builder struct {
	r        *Result
	domains  map[string]bool
	networks map[netip.Prefix]bool
	ports    []configs.PortRange
	special  []netip.Prefix
}

func newBuilder(r *Result) *builder {
	return &builder{r: r, domains: make(map[string]bool), networks: make(map[netip.Prefix]bool), special: specialPrefixes()}
}

func (b *builder) skip(set int64, value string, err error) {
	b.r.SkippedTotal++
	if len(b.r.Skipped) < maxSkipped {
		b.r.Skipped = append(b.r.Skipped, Skipped{Set: set, Value: value, Reason: err.Error()})
	}
}

// add takes what is usable of s. Its ports count only when it gave a name or a
// network: a set whose values were all skipped must not widen the ports of the
// others.
func (b *builder) add(s *EndpointSet) {
	used := false
	for _, u := range s.URLs {
		if d, err := suffixOf(u); err != nil {
			b.skip(s.ID, u, err)
		} else {
			b.domains[d], used = true, true
		}
	}
	for _, ip := range s.IPs {
		if p, err := networkOf(ip, b.special); err != nil {
			b.skip(s.ID, ip, err)
		} else {
			b.networks[p], used = true, true
		}
	}
	if !used {
		return
	}
	b.r.Sets = append(b.r.Sets, s.ID)
	b.ports = append(b.ports, b.portList(s.ID, "tcp", s.TCPPorts)...)
	b.ports = append(b.ports, b.portList(s.ID, "udp", s.UDPPorts)...)
}

// finish bounds, reduces and sorts what was collected.
func (b *builder) finish() error {
	if len(b.domains) > MaxDomains {
		return fmt.Errorf("%d distinct names, more than the %d accepted", len(b.domains), MaxDomains)
	}
	if len(b.networks) > MaxNetworks {
		return fmt.Errorf("%d distinct networks, more than the %d accepted", len(b.networks), MaxNetworks)
	}
	b.r.Domains = reduceDomains(b.domains)
	b.r.Networks = reduceNetworks(b.networks)
	b.r.Ports = mergePorts(b.ports)
	slices.Sort(b.r.Sets)
	b.r.Sets = slices.Compact(b.r.Sets)
	return nil
}

// portList parses a set's comma-separated ports for transport, skipping what is
// not a port or range of 1-65535.
func (b *builder) portList(set int64, transport, list string) []configs.PortRange {
	var out []configs.PortRange
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			b.skip(set, item, fmt.Errorf("%s port %q names a transport of its own", transport, item))
			continue
		}
		pr, err := configs.ParsePortRange(item)
		if err != nil {
			b.skip(set, item, fmt.Errorf("%s ports: %w", transport, err))
			continue
		}
		pr.Transport = transport
		out = append(out, pr)
	}
	return out
}

// mergePorts sorts ranges (TCP first) and joins those that overlap or touch.
func mergePorts(prs []configs.PortRange) []configs.PortRange {
	slices.SortFunc(prs, func(a, b configs.PortRange) int {
		return cmp.Or(cmp.Compare(a.Transport, b.Transport), cmp.Compare(a.First, b.First))
	})
	var out []configs.PortRange
	for _, pr := range prs {
		if n := len(out); n > 0 && out[n-1].Transport == pr.Transport && int(pr.First) <= int(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, pr.Last)
			continue
		}
		out = append(out, pr)
	}
	return out
}
