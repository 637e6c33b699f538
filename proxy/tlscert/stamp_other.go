//go:build !unix

package tlscert

import (
	"fmt"
	"os"
	"time"
)

// stamp is what tells a file changed: its size and modification time.
type stamp struct {
	certSize, keySize int64
	certTime, keyTime time.Time
}

func stampOf(certFile, keyFile string) (stamp, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return stamp{}, fmt.Errorf("tls.cert_file: %w", err)
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return stamp{}, fmt.Errorf("tls.key_file: %w", err)
	}
	return stamp{c.Size(), k.Size(), c.ModTime(), k.ModTime()}, nil
}
