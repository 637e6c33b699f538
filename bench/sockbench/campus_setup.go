package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
)

// The limits -setup writes: the campus of issue 10.
const (
	setupStudentRate = configs.Rate(4_000_000 / 8) // 4 Mbit/s each way, per user
	setupSkypeRate   = configs.Rate(1_000_000 / 8) // 1 Mbit/s each way, per user
	// setupGlobalShare is the global cap as a share of the download the mix
	// offers: below it, so the cap binds, far enough above the calls and
	// the per-user limits that each of those limits binds somewhere too.
	setupGlobalShare = 0.6
	// udpCallPort is a Teams media port (UDP 3478-3481), which classifies as
	// skype by port alone.
	udpCallPort = 3478
)

// campusConfig is the config -setup writes; %[1]d is the user count, %[2]s the
// offered download, %[3]s the student rate, %[4]s the skype rate, %[5]s the
// global cap, %[6]d the skype network's second octet, %[7]s the hogs' names.
const campusConfig = `# Written by sockbench campus -setup for %[1]d users. Every user is a student
# but the hogs (staff, no limit of their own); the mix offers %[2]s of download
# besides the hogs, the global cap is 60%% of that.
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 512, max_sessions_per_user: 256}
shaping:
  default_group: students
  groups: {students: {upload: %[3]s, download: %[3]s}, staff: {upload: 0, download: 0}}
  members: {%[7]s}
  apps: {skype: {per_user: {upload: %[4]s, download: %[4]s}}}
  global: {upload: %[5]s, download: %[5]s}
apps:
  skype:
    networks: [127.%[6]d.0.0/16]
    any_address_ports: ["udp/3478-3481"]
`

// setupResult says what -setup wrote.
type setupResult struct {
	Scenario  string `json:"scenario"`
	Config    string `json:"config"`
	UsersFile string `json:"users_file"`
	Users     int    `json:"users"`
	Cost      int    `json:"cost"`
	Offered   string `json:"offered_download"`
	Global    string `json:"global"`
}

func (r *setupResult) table(w io.Writer) {
	fmt.Fprintf(w, "wrote %s (global cap %s, 60%% of the %s offered)\n", r.Config, r.Global, r.Offered)
	fmt.Fprintf(w, "wrote %s (%d users, bcrypt cost %d)\n", r.UsersFile, r.Users, r.Cost)
}

// campusSetup writes the users file and the config of the mix into c.setup.
func campusSetup(c *campusOptions) (result, error) {
	if err := os.MkdirAll(c.setup, 0o755); err != nil {
		return nil, err
	}
	names := make([]string, c.userCount)
	for i := range names {
		names[i] = fmt.Sprintf("u%05d", i)
	}
	mix, err := newMix(names, c)
	if err != nil {
		return nil, err
	}
	hogs := make([]string, len(mix.hog))
	for i, u := range mix.hog {
		hogs[i] = names[u] + ": staff"
	}
	offered := configs.Rate(offeredBy(mix.demands(func(u int) float64 {
		if mix.role[u] == roleHog {
			return 0
		}
		return float64(setupStudentRate)
	}, float64(setupSkypeRate))))
	global := configs.Rate(math.Round(float64(offered)*setupGlobalShare/125_000) * 125_000) // whole Mbit
	r := &setupResult{Scenario: "campus-setup", Config: filepath.Join(c.setup, "sockshaper.yaml"),
		UsersFile: filepath.Join(c.setup, "users.htpasswd"), Users: len(names), Cost: c.cost,
		Offered: fmt.Sprintf("%.1fMbit", float64(offered)*8/1e6), Global: global.String()}
	users, err := hashUsers(names, c.password, c.cost)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.UsersFile, users, 0o600); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(campusConfig, len(names), r.Offered, setupStudentRate, setupSkypeRate, global, callNet, strings.Join(hogs, ", "))
	return r, os.WriteFile(r.Config, []byte(cfg), 0o644)
}

// hashUsers returns an htpasswd file of names, all with password, hashed on
// every core.
func hashUsers(names []string, password string, cost int) ([]byte, error) {
	lines := make([]string, len(names))
	errs := make([]error, len(names))
	idx := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range idx {
				var h []byte
				h, errs[i] = bcrypt.GenerateFromPassword([]byte(password), cost)
				// htpasswd -B writes $2y$, the same algorithm as Go's $2a$.
				lines[i] = names[i] + ":" + strings.Replace(string(h), "$2a$", "$2y$", 1) + "\n"
			}
		})
	}
	for i := range names {
		idx <- i
	}
	close(idx)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bcrypt: %w", err)
		}
	}
	return []byte(strings.Join(lines, "")), nil
}

// campusLimits are the config's limits the report compares against, bytes/s; 0
// is unlimited.
type campusLimits struct {
	Student float64 `json:"student_download_bps"`
	Skype   float64 `json:"skype_per_user_download_bps"`
	Global  float64 `json:"global_download_bps"`
	// members are the download limits of the users listed under
	// shaping.members (their group's); every other user is a student.
	members map[string]float64
	// keepAlive is the config's http.keepalive.
	keepAlive time.Duration
}

// own returns user's own download limit, bytes/s; 0 is unlimited.
func (l campusLimits) own(user string) float64 {
	if r, ok := l.members[user]; ok {
		return r
	}
	return l.Student
}

// offeredBy returns the sum of the finite demands: what the mix offers besides
// the users without a limit.
func offeredBy(ds []float64) float64 {
	sum := 0.0
	for _, d := range ds {
		if !math.IsInf(d, 0) {
			sum += d
		}
	}
	return sum
}

// loadCampusConfig reads the proxy's config: its limits and the names in its
// users file. It checks that the config classifies the call targets as skype.
func loadCampusConfig(path string) (campusLimits, []string, error) {
	cfg, err := configs.Load(path)
	if err != nil {
		return campusLimits{}, nil, err
	}
	cl := shaping.NewClassifier(cfg.Apps)
	tcp := shaping.Target{Transport: "tcp", Addr: campusAddr(callNet, 0), Port: 443}
	udp := shaping.Target{Transport: "udp", Addr: netip.AddrFrom4([4]byte{127, udpNet, 1, 1}), Port: udpCallPort}
	if cl.Classify(tcp) != "skype" || cl.Classify(udp) != "skype" {
		return campusLimits{}, nil, fmt.Errorf("%s: the skype app class must match TCP to 127.%d.0.0/16 and UDP to port %d (sockbench campus -setup writes such a config)", path, callNet, udpCallPort)
	}
	lim := campusLimits{
		Student:   float64(cfg.Shaping.Groups[cfg.Shaping.DefaultGroup].Download),
		Skype:     float64(cfg.Shaping.Apps["skype"].PerUser.Download),
		Global:    float64(cfg.Shaping.Global.Download),
		members:   map[string]float64{},
		keepAlive: cfg.HTTP.KeepAlive,
	}
	for user, group := range cfg.Shaping.Members {
		lim.members[user] = float64(cfg.Shaping.Groups[group].Download)
	}
	names, err := readUserNames(cfg.Auth.UsersFile)
	return lim, names, err
}

// readUserNames returns the user names of an htpasswd file, in file order.
func readUserNames(path string) ([]string, error) {
	if path == "" {
		return nil, fmt.Errorf("the config has no users file; the campus scenario logs in")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no users", path)
	}
	return names, sc.Err()
}
