//go:build unix

package proxy

import (
	"math"
	"syscall"
)

// FDLimit returns the process's descriptor limit (the soft RLIMIT_NOFILE), or 0
// when it cannot be read. The Go runtime raises the soft limit to the hard one at
// start, so in the daemon this is the most descriptors it may ever hold.
func FDLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(uint64(rl.Cur), math.MaxInt32))
}
