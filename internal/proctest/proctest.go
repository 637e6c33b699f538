// Package proctest ties the processes a test starts (slapd, redis-server,
// haproxy, prometheus, the daemon under test) to the test binary's life, so
// that a test run killed by its -timeout or by a signal leaves no orphan
// holding ports, files or installed state for the next run.
//
// On Linux [DieWithParent] sets the child's parent-death signal (SIGKILL,
// prctl PR_SET_PDEATHSIG). The kernel sends it when the OS thread that forked
// the child ends, not the process: the Go runtime ends a thread only when a
// goroutine locked to it (runtime.LockOSThread) returns without unlocking, which
// no test of this repository does on a goroutine that starts processes. So a
// child dies with the test binary and not before; tests that lock threads
// (network namespaces, say) must start their children from another goroutine.
// Elsewhere DieWithParent does nothing: sockshaper's tests run on Linux.
package proctest

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process get SIGKILL when the test binary ends. Call
// it before cmd.Start; it keeps the other fields of cmd.SysProcAttr.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	setPdeathsig(cmd.SysProcAttr)
}
