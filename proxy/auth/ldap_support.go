package auth

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// readSecret reads a one-line secret file; a final line break is not part of it.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s holds more than one line; it must hold the password alone", path)
	}
	return s, nil
}

func readCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// floor follows the time of logins that reached the bind: a moving average plus
// twice the moving mean deviation (as TCP estimates its retransmission timeout),
// so that most wrong passwords take no longer than the floor an unknown user is
// padded to.
type floor struct {
	mu       sync.Mutex
	avg, dev time.Duration
}

func (f *floor) observe(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.avg == 0 {
		f.avg, f.dev = d, d/2
		return
	}
	diff := d - f.avg
	f.avg += diff / 8
	f.dev += (max(diff, -diff) - f.dev) / 4
}

func (f *floor) get() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.avg + 2*f.dev
}
