package kdctest

import "syscall"

// dieWithParent makes the kernel kill the KDC when the test binary dies (a
// panic, a timeout, SIGKILL), so that no krb5kdc outlives its test.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
