package shaping

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// userLoad is one user's busy sessions in a fairness run.
type userLoad struct {
	user     string
	app      string // Other when ""
	sessions int
}

// runUsers runs the sessions of every load on r (Copy loops of endless
// sources on their download chains) for windows × window and returns the bytes
// of each session in each window, by load.
func runUsers(r *Registry, loads []userLoad, windows int, window time.Duration) [][][]int64 {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(windows)*window)
	defer cancel()
	moved := make([][][]int64, len(loads))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for u, ld := range loads {
		app := ld.app
		if app == "" {
			app = Other
		}
		moved[u] = make([][]int64, ld.sessions)
		for s := range ld.sessions {
			moved[u][s] = make([]int64, windows)
			l := r.Acquire(Who{User: ld.user}, app)
			wg.Go(func() {
				defer l.Release()
				Copy(ctx, io.Discard, endless{}, l.Download(), func(n int, _ time.Duration) {
					if w := int(time.Since(start) / window); w < windows {
						mu.Lock()
						moved[u][s][w] += int64(n)
						mu.Unlock()
					}
				})
			})
		}
	}
	wg.Wait()
	return moved
}

// userBytes returns each load's bytes in windows from..to-1.
func userBytes(moved [][][]int64, from, to int) []int64 {
	out := make([]int64, len(moved))
	for u, sessions := range moved {
		for _, perWindow := range sessions {
			for _, n := range perWindow[from:to] {
				out[u] += n
			}
		}
	}
	return out
}

// sessionBytes returns the bytes of each of sessions in windows from..to-1.
func sessionBytes(sessions [][]int64, from, to int) []int64 {
	out := make([]int64, len(sessions))
	for s, perWindow := range sessions {
		for _, n := range perWindow[from:to] {
			out[s] += n
		}
	}
	return out
}

// firstStarved describes the first session that moved nothing in a window
// from first on, or returns "".
func firstStarved(moved [][][]int64, first int) string {
	for u, sessions := range moved {
		for s, perWindow := range sessions {
			for w := first; w < len(perWindow); w++ {
				if perWindow[w] == 0 {
					return fmt.Sprintf("user %d's session %d moved nothing in window %d (bytes by window %v)", u, s, w, perWindow)
				}
			}
		}
	}
	return ""
}

// maxMin returns each user's max-min fair share of rate when user i can use
// at most caps[i] (0: no cap of its own).
func maxMin(rate float64, caps []float64) []float64 {
	share := make([]float64, len(caps))
	done := make([]bool, len(caps))
	left, open := rate, len(caps)
	for open > 0 {
		level := left / float64(open)
		capped := false
		for i, c := range caps {
			if !done[i] && c > 0 && c <= level {
				share[i], done[i], capped = c, true, true
				left -= c
				open--
			}
		}
		if !capped {
			for i := range caps {
				if !done[i] {
					share[i] = level
				}
			}
			return share
		}
	}
	return share
}

// TestSharedBucketFairBetweenUsers runs users with very different numbers of
// busy sessions on one saturated shared bucket (the global one, or an app
// class's total) and checks that each user gets their max-min fair share of
// it within ±20%, whatever their session count, that a user's sessions share
// the user's part evenly (CV below 0.1), and that no session of any user
// stalls for a 5 s window. A user held
// below their share by their own limit leaves the rest to the others. Before,
// the bucket served sessions first come, first served: at 4 Mbit/s a user
// with 100 sessions took 99% of it from a user with one.
func TestSharedBucketFairBetweenUsers(t *testing.T) {
	const teams = "teams"
	tests := []struct {
		name   string
		global configs.Rate // 0: the app total is the shared bucket
		total  configs.Rate // teams' total
		own    configs.Rate // the download limit of group "capped"; members: users named capped*
		loads  []userLoad
	}{
		{"4 Mbit/s global, 100 sessions vs 1", 500_000, 0, 0, []userLoad{{"heavy", "", 100}, {"light", "", 1}}},
		{"4 Mbit/s global, 1/10/100 sessions", 500_000, 0, 0, []userLoad{{"a", "", 1}, {"b", "", 10}, {"c", "", 100}}},
		{"64 kbit/s global, 100 sessions vs 1", 8000, 0, 0, []userLoad{{"heavy", "", 100}, {"light", "", 1}}},
		{"64 kbit/s global, 1/10/100 sessions", 8000, 0, 0, []userLoad{{"a", "", 1}, {"b", "", 10}, {"c", "", 100}}},
		{"8 kbit/s global, 1,000 sessions vs 1", 1000, 0, 0, []userLoad{{"crowd", "", 1000}, {"light", "", 1}}},
		{"100 Mbit/s global, 100 sessions vs 1", 12_500_000, 0, 0, []userLoad{{"heavy", "", 100}, {"light", "", 1}}},
		{"teams total 4 Mbit/s, 100 sessions vs 1 vs 10", 0, 500_000, 0,
			[]userLoad{{"heavy", teams, 100}, {"light", teams, 1}, {"mid", teams, 10}}},
		{"teams total under a global cap, users in two classes", 1_000_000, 500_000, 0,
			[]userLoad{{"heavy", teams, 100}, {"light", teams, 1}, {"web", "", 5}}},
		{"max-min: a user capped below 1/k leaves the rest", 500_000, 0, 50_000,
			[]userLoad{{"capped", "", 50}, {"heavy", "", 100}, {"light", "", 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const windows, window = 5, 5 * time.Second
				cfg := configs.Shaping{
					Groups:  map[string]configs.Limit{"capped": {Download: tc.own}},
					Members: map[string]string{"capped": "capped"},
					Apps:    map[string]configs.AppLimits{teams: {Total: configs.Limit{Download: tc.total}}},
					Global:  configs.Limit{Download: tc.global},
				}
				moved := runUsers(NewRegistry(cfg), tc.loads, windows, window)
				if s := firstStarved(moved, 1); s != "" {
					t.Fatal(s)
				}
				// The first window holds the bursts and the queues forming.
				got := userBytes(moved, 1, windows)
				want := wantShares(tc.global, tc.total, tc.own, tc.loads)
				secs := (time.Duration(windows-1) * window).Seconds()
				var report []string
				for i, ld := range tc.loads {
					rate := float64(got[i]) / secs
					_, cv := meanCV(sessionBytes(moved[i], 1, windows))
					report = append(report, fmt.Sprintf("%s×%d %.0f B/s (want %.0f, CV %.3f)", ld.user, ld.sessions, rate, want[i], cv))
					if math.Abs(rate-want[i]) > 0.2*want[i] {
						t.Errorf("%s with %d sessions got %.0f B/s, want %.0f ± 20%%", ld.user, ld.sessions, rate, want[i])
					}
					if cv > 0.1 {
						t.Errorf("%s's %d sessions share unevenly: CV %.3f", ld.user, ld.sessions, cv)
					}
				}
				t.Log(strings.Join(report, ", "))
			})
		})
	}
}

// wantShares returns the max-min fair rate of every load of the cases of
// TestSharedBucketFairBetweenUsers: the teams total shared between the teams
// users, each capped by own when their name starts with "capped", and then the
// global rate shared among all, the teams users capped by their share of the
// total.
func wantShares(global, total, own configs.Rate, loads []userLoad) []float64 {
	caps := make([]float64, len(loads))
	var inTeams []int
	for i, ld := range loads {
		if strings.HasPrefix(ld.user, "capped") {
			caps[i] = float64(own)
		}
		if ld.app != "" {
			inTeams = append(inTeams, i)
		}
	}
	if total > 0 {
		teamCaps := make([]float64, len(inTeams))
		for j, i := range inTeams {
			teamCaps[j] = caps[i]
		}
		for j, s := range maxMin(float64(total), teamCaps) {
			caps[inTeams[j]] = s
		}
	}
	if global == 0 {
		return caps
	}
	return maxMin(float64(global), caps)
}

// TestUserInTwoClasses: a user with sessions in two app classes, one of
// which has a saturated total shared with another user, beside a third user
// on the global cap alone. Between users, the global cap is shared max-min
// (the second user held by their part of the app total, the other two each
// the rest's half); within the first user, the sessions of both classes share
// the user's part evenly, those of the app class no more than the user's part
// of its total. A session waiting on the app total's rotation does not hold up
// the same user's other sessions.
func TestUserInTwoClasses(t *testing.T) {
	tests := []struct {
		name  string
		total configs.Rate // teams' total; the global cap is 1,000,000 B/s
		want  []float64    // x's teams sessions, x's others, y, z
	}{
		{"teams total 4 Mbit/s", 500_000, []float64{166_667, 166_667, 333_333, 333_333}},
		{"teams total 64 kbit/s", 8000, []float64{4000, 494_000, 4000, 498_000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const windows, window = 5, 5 * time.Second
				cfg := configs.Shaping{
					Apps:   map[string]configs.AppLimits{"teams": {Total: configs.Limit{Download: tc.total}}},
					Global: configs.Limit{Download: 1_000_000},
				}
				loads := []userLoad{{"x", "teams", 10}, {"x", "", 10}, {"y", "teams", 1}, {"z", "", 1}}
				moved := runUsers(NewRegistry(cfg), loads, windows, window)
				if s := firstStarved(moved, 1); s != "" {
					t.Fatal(s)
				}
				got := userBytes(moved, 1, windows)
				secs := (time.Duration(windows-1) * window).Seconds()
				for i, ld := range loads {
					rate, app := float64(got[i])/secs, cmp.Or(ld.app, Other)
					t.Logf("%s/%s×%d: %.0f B/s (want %.0f)", ld.user, app, ld.sessions, rate, tc.want[i])
					if math.Abs(rate-tc.want[i]) > 0.2*tc.want[i] {
						t.Errorf("%s's %d %s sessions got %.0f B/s, want %.0f ± 20%%", ld.user, ld.sessions, app, rate, tc.want[i])
					}
				}
			})
		})
	}
}
