//go:build !linux

package kdctest

import "syscall"

// dieWithParent: only Linux has a parent-death signal; elsewhere Stop is all.
func dieWithParent() *syscall.SysProcAttr { return nil }
