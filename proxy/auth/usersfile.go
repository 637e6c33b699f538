package auth

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RecommendedCost is the lowest bcrypt cost `sockshaper check-config` accepts
// without a warning: x/crypto's default, about 50 ms a check on a current core.
// `htpasswd -B` writes cost 5 unless given -C, which an attacker holding the file
// cracks 32 times faster.
const RecommendedCost = bcrypt.DefaultCost

// maxCost is the highest cost accepted: htpasswd's -C stops at 17 (several seconds
// a login), and a higher one would make the calibration at load take hours.
const maxCost = 17

// UsersFile is an htpasswd file of bcrypt lines held in memory. It is a
// [Verifier] and a [FailureFloorer]: a wrong password costs the time of a check
// at the file's highest cost whatever the user's own cost, and an unknown user is
// checked against a dummy hash of that cost. A UsersFile is safe for concurrent
// use and never changes; a reload loads a new one.
type UsersFile struct {
	source string
	hashes map[string][]byte
	weak   []WeakHash
	// dummy is compared against when the user is unknown, at the file's highest
	// cost, so that the CPU an unknown user costs is that of a known one.
	dummy []byte
	// calibrated is the time of one check at the highest cost, measured at load;
	// observed follows the checks at that cost since (a moving average), so the
	// floor rises when a loaded machine makes checks slower.
	calibrated time.Duration
	topCost    int
	observed   atomic.Int64
}

// WeakHash names a user whose hash is below [RecommendedCost].
type WeakHash struct {
	User string
	Line int
	Cost int
}

// LoadUsersFile reads an htpasswd file of bcrypt lines ("user:$2y$..." as written
// by `htpasswd -B` or `sockshaper passwd`); blank lines and lines starting with #
// are skipped. It measures a check at the file's highest cost (two or three
// checks' time). Errors name the file and line.
func LoadUsersFile(path string) (*UsersFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	return ParseUsersFile(f, path)
}

// ParseUsersFile is [LoadUsersFile] on an open reader; source names it in errors.
func ParseUsersFile(r io.Reader, source string) (*UsersFile, error) {
	u, err := parseUsers(r, source)
	if err != nil {
		return nil, err
	}
	if err := u.calibrate(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return u, nil
}

// parseUsers reads the lines; it runs no bcrypt, so it can be fuzzed.
func parseUsers(r io.Reader, source string) (*UsersFile, error) {
	u := &UsersFile{source: source, hashes: map[string][]byte{}, topCost: bcrypt.MinCost}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, cost, err := parseUserLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, line, err)
		}
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q is listed twice", source, line, user)
		}
		u.hashes[user] = hash
		u.topCost = max(u.topCost, cost)
		if cost < RecommendedCost {
			u.weak = append(u.weak, WeakHash{User: user, Line: line, Cost: cost})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("%s: no users", source)
	}
	return u, nil
}

// parseUserLine splits "user:hash" and checks that the hash is bcrypt. htpasswd -B
// writes $2y$, which x/crypto/bcrypt reads as $2a$ (they are the same algorithm).
func parseUserLine(text string) (string, []byte, int, error) {
	user, hash, ok := strings.Cut(text, ":")
	if !ok || user == "" {
		return "", nil, 0, fmt.Errorf("want user:bcrypt-hash")
	}
	if len(user) > 255 {
		return "", nil, 0, fmt.Errorf("user name longer than 255 bytes (RFC 1929 limit)")
	}
	if strings.TrimSpace(user) != user {
		return "", nil, 0, fmt.Errorf("user %q: a name with surrounding white space; logins with such names are refused, so remove it", user)
	}
	if !strings.HasPrefix(hash, "$2y$") && !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") {
		return "", nil, 0, fmt.Errorf("user %q: only bcrypt hashes ($2y$, $2a$, $2b$) are accepted; create one with `sockshaper passwd %s` or `htpasswd -B`", user, user)
	}
	b := []byte(hash)
	if b[2] == 'y' {
		b[2] = 'a'
	}
	cost, err := bcrypt.Cost(b)
	if err != nil {
		return "", nil, 0, fmt.Errorf("user %q: %w", user, err)
	}
	if cost > maxCost {
		return "", nil, 0, fmt.Errorf("user %q: bcrypt cost %d is above %d, which would take minutes a login", user, cost, maxCost)
	}
	return user, b, cost, nil
}

// calibrate makes the dummy hash and measures a check at the highest cost: the
// median of making the dummy and checking it twice, so that one slow or fast run
// does not set the floor.
func (u *UsersFile) calibrate() error {
	start := time.Now()
	dummy, err := bcrypt.GenerateFromPassword([]byte("sockshaper-dummy"), u.topCost)
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	runs := []time.Duration{time.Since(start)}
	for range 2 {
		start = time.Now()
		_ = bcrypt.CompareHashAndPassword(dummy, []byte("calibration"))
		runs = append(runs, time.Since(start))
	}
	slices.Sort(runs)
	u.dummy, u.calibrated = dummy, runs[1]
	u.observed.Store(int64(u.calibrated))
	return nil
}

// Verify implements [Verifier]: it runs bcrypt against user's hash, or against the
// dummy hash for an unknown user. It never returns Unavailable.
func (u *UsersFile) Verify(_ context.Context, user, password string) (Identity, Verdict, error) {
	hash, known := u.hashes[user]
	if !known {
		hash = u.dummy
	}
	start := time.Now()
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	if cost, _ := bcrypt.Cost(hash); cost == u.topCost {
		u.observe(time.Since(start))
	}
	if !known || !match {
		return Identity{}, Rejected, nil
	}
	return Identity{User: user}, OK, nil
}

// UserName implements [UserNamer]: htpasswd compares names byte for byte, and a
// name with surrounding white space, which the file cannot hold, is refused.
func (u *UsersFile) UserName(user string) (string, bool) { return exactName(user) }

// observe moves the average of checks at the highest cost by an eighth towards d.
func (u *UsersFile) observe(d time.Duration) {
	for {
		old := u.observed.Load()
		if u.observed.CompareAndSwap(old, old+(int64(d)-old)/8) {
			return
		}
	}
}

// FailureFloor implements [FailureFloorer]: the time of a check at the file's
// highest cost, as calibrated at load or as observed since, whichever is longer.
func (u *UsersFile) FailureFloor() time.Duration {
	return max(u.calibrated, time.Duration(u.observed.Load()))
}

// Has reports whether user is in the file.
func (u *UsersFile) Has(user string) bool {
	_, ok := u.hashes[user]
	return ok
}

// Users returns the number of users.
func (u *UsersFile) Users() int { return len(u.hashes) }

// Source names the file, as given to [LoadUsersFile] or [ParseUsersFile].
func (u *UsersFile) Source() string { return u.source }

// WeakHashes returns the users whose bcrypt cost is below [RecommendedCost], in
// file order. A new slice on each call.
func (u *UsersFile) WeakHashes() []WeakHash { return slices.Clone(u.weak) }

// HashPassword returns an htpasswd line "user:$2y$..." for password at
// [RecommendedCost], in the format of `htpasswd -B`.
func HashPassword(user, password string) (string, error) {
	if user == "" || strings.ContainsAny(user, ":\n") || len(user) > 255 || strings.TrimSpace(user) != user {
		return "", fmt.Errorf("user name must be 1 to 255 bytes without ':', newline or surrounding white space")
	}
	if password == "" || len(password) > 72 {
		return "", fmt.Errorf("password must be 1 to 72 bytes (bcrypt's limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), RecommendedCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	hash = bytes.Replace(hash, []byte("$2a$"), []byte("$2y$"), 1)
	return user + ":" + string(hash), nil
}
