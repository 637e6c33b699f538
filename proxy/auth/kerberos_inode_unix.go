//go:build unix

package auth

import (
	"os"
	"syscall"
)

// inodeOf returns the file's inode number, which a rename over the file changes.
func inodeOf(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Ino)
	}
	return 0
}
