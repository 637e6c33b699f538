package auth

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// directorySpellings are names under which the test directory (OpenLDAP: uid
// compares with caseIgnoreMatch, which ignores case, surrounding spaces and
// compatibility forms) finds alice's entry.
var directorySpellings = []string{
	"alice", "Alice", "ALICE", "aLiCe", " alice", "alice  ", "ＡＬＩＣＥ", "ａlice", "alİce", "alice\u00a0",
}

// TestDirectorySpellingsShareOneCount: against a real slapd, 100 wrong passwords
// at once from one address, for alice under every spelling the directory folds
// into her entry, bind (try a password) at most her allowance of 10 times, with
// names folded and with exact names (where only the entry's DN joins them);
// another address still logs her in under any of them.
func TestDirectorySpellingsShareOneCount(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	for _, nameCase := range []string{configs.NameCaseFold, configs.NameCaseExact} {
		t.Run(nameCase, func(t *testing.T) {
			cfg := ldapConfig(t, s)
			cfg.UserNameCase = nameCase
			rec := newCountingRecorder()
			d := newTestDirectory(t, cfg, DirectoryOptions{Recorder: rec})
			g := NewGate(GateOptions{Throttle: configs.Defaults().Auth.Throttle, QueuePerAddress: 128})
			closeGate(t, g)
			a := g.Authenticator(d, 0)
			results := map[string]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Go(func() {
					out := a.Login(context.Background(), client, directorySpellings[i%len(directorySpellings)], fmt.Sprint("guess", i))
					mu.Lock()
					results[out.Result]++
					mu.Unlock()
				})
			}
			wg.Wait()
			binds := rec.get(rec.requests, OpBind)
			t.Logf("100 guesses under %d spellings: %d binds, results %v", len(directorySpellings), binds, results)
			if binds > 10 || results[ResultOK] != 0 || results[ResultFailed]+results[ResultThrottled] != 100 {
				t.Errorf("%d binds (want at most alice's allowance, 10), results %v", binds, results)
			}
			for _, name := range directorySpellings[:4] {
				if out := a.Login(context.Background(), client2, name, slapdtest.Password("alice")); out.Result != ResultOK || out.Identity.User != "alice" {
					t.Errorf("%q from another address: %+v; want ok as alice", name, out)
				}
			}
		})
	}
}
