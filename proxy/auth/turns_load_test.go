package auth

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// natScene is an address over its allowance with guessers at it, in a synctest
// bubble: checks take 20 ms on one worker, a rejection is padded to 20 ms, and
// every guesser waits 2 ms (a round trip) between its logins.
type natScene struct {
	a       *Authenticator
	v       *stubVerifier
	stop    chan struct{}
	wg      sync.WaitGroup
	guesses atomic.Int64
}

func turnSettings() configs.AuthThrottle {
	return configs.AuthThrottle{FailuresPerUser: 10, FailuresPerAddress: 100, Window: time.Hour,
		RememberVerified: 24 * time.Hour, OverAllowanceInterval: time.Second, OverAllowanceBurst: 3}
}

// newNATScene spends client's allowance with 10 invented names × 10 guesses.
func newNATScene(t *testing.T, set configs.AuthThrottle, users int) *natScene {
	g := NewGate(GateOptions{Throttle: set, Workers: 1})
	t.Cleanup(g.Close)
	v := &stubVerifier{passwords: map[string]string{}, took: 20 * time.Millisecond}
	for i := range users {
		v.passwords[fmt.Sprintf("student%02d", i)] = "right"
	}
	s := &natScene{a: g.Authenticator(flooredVerifier{v, 20 * time.Millisecond}, 0), v: v, stop: make(chan struct{})}
	for i := range 100 {
		if out := s.a.Login(context.Background(), client, fmt.Sprintf("intruder%d", i%10), fmt.Sprint("guess", i)); out.Result != ResultFailed {
			t.Fatalf("guess %d: %s", i, out.Result)
		}
	}
	return s
}

// guess starts a guesser whose i-th login is attempt(i).
func (s *natScene) guess(attempt func(i int) (user, password string)) {
	s.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			user, password := attempt(i)
			s.a.Login(ctx, client, user, password)
			cancel()
			s.guesses.Add(1)
		}
	})
}

// newcomers logs n users in with their right passwords, one every gap, and
// returns how long each took (a minute for a refusal).
func (s *natScene) newcomers(n int, gap time.Duration) []time.Duration {
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * gap)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			took[i] = time.Minute
			if out := s.a.Login(ctx, client, fmt.Sprintf("student%02d", i), "right"); out.Result == ResultOK {
				took[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	slices.Sort(took)
	return took
}

func (s *natScene) end() { close(s.stop); s.wg.Wait() }

// TestTurnsServeNewcomersBesideGuessers: at an address over its allowance, 60
// users log in one every 50 ms while guessers go on: on their spent names, by
// spraying one password over fresh names (four at once), and (where given)
// stuffing a fresh name and password at a time. The newcomers are in within 2 s
// (beside spraying, most at once), and the checked guesses stay within 3 plus one
// a second.
func TestTurnsServeNewcomersBesideGuessers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stuffers    int
		median, p90 time.Duration
	}{
		// The first newcomers wait for a turn to accrue: the sprayers spent the
		// burst before their password showed as sprayed.
		{"spent names and spraying", 0, 100 * time.Millisecond, time.Second},
		// A stuffer takes most turns as they accrue (it is first in line
		// again soon after each failure); the newcomers share the rest.
		{"and one stuffer", 1, 2 * time.Second, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newNATScene(t, turnSettings(), 60)
				checks := s.v.calls.Load()
				for k := range 2 {
					s.guess(func(i int) (string, string) { return fmt.Sprintf("intruder%d", (k+i)%10), fmt.Sprint("again", i) })
				}
				for k := range 4 {
					s.guess(func(i int) (string, string) { return fmt.Sprintf("sprayed%d-%d", k, i), "Spring2026!" })
				}
				for k := range tc.stuffers {
					s.guess(func(i int) (string, string) { return fmt.Sprintf("stuffed%d-%d", k, i), fmt.Sprint("leaked", i) })
				}
				time.Sleep(300 * time.Millisecond)
				start := time.Now()
				took := s.newcomers(60, 50*time.Millisecond)
				s.end()
				phase := time.Since(start) + 300*time.Millisecond
				guessed := s.v.calls.Load() - checks - 60
				t.Logf("newcomers: median %v, 90th percentile %v, slowest %v; guessers: %d logins, %d checked in %v",
					took[30], took[54], took[59], s.guesses.Load(), guessed, phase)
				if took[30] > tc.median || took[54] > tc.p90 {
					t.Errorf("newcomers took %v (median), %v (90th percentile); want at most %v, %v", took[30], took[54], tc.median, tc.p90)
				}
				if bound := 3 + int64(phase/time.Second) + 1; guessed > bound {
					t.Errorf("%d guesses checked in %v; want at most %d", guessed, phase, bound)
				}
			})
		})
	}
}
