//go:build !unix

package proxy

// FDLimit returns 0: this system has no RLIMIT_NOFILE to read.
func FDLimit() int { return 0 }
