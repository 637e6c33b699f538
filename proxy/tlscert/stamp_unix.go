//go:build unix

package tlscert

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// stamp is what tells a file changed: its size, modification time and inode,
// for both files (os.Stat follows symbolic links, so a link that points at a
// new file changes the stamp).
type stamp struct {
	certSize, keySize   int64
	certTime, keyTime   time.Time
	certInode, keyInode uint64
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
	return stamp{c.Size(), k.Size(), c.ModTime(), k.ModTime(), inode(c), inode(k)}, nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
