package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The login key is HMAC-SHA256 of the user's length, user and password under the
// cache's key, whichever pooled HMAC computes it and however many logins
// compute it at once.
func TestKeyOfIsTheKeyedHash(t *testing.T) {
	c := newCache(time.Minute, 0, time.Now)
	want := func(user, password string) loginKey {
		m := hmac.New(sha256.New, c.key[:])
		m.Write(binary.AppendUvarint(nil, uint64(len(user))))
		m.Write([]byte(user + password))
		var k loginKey
		m.Sum(k[:0])
		return k
	}
	logins := [][2]string{{"alice", "pw"}, {"alice", "pw2"}, {"bob", "pw"}, {"", ""},
		{"a", "b\x00c"}, {"a\x00b", "c"}, {"long", strings.Repeat("p", 5000)}, {"ü", "🔑"}}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l := logins[(w+i)%len(logins)]
				if got := c.keyOf(l[0], l[1]); got != want(l[0], l[1]) {
					t.Errorf("keyOf(%q, %.10q) is not the keyed hash", l[0], l[1])
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[loginKey]string{}
	for _, l := range logins {
		k := c.keyOf(l[0], l[1])
		if prev, ok := seen[k]; ok {
			t.Errorf("%q and %q have one key", prev, fmt.Sprint(l))
		}
		seen[k] = fmt.Sprint(l)
	}
}
