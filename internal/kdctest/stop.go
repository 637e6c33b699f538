package kdctest

import (
	"os/exec"
	"syscall"
	"time"
)

// stop ends cmd by its PID: SIGTERM, then SIGKILL after 5 s; done closes when it
// has been waited for.
func stop(cmd *exec.Cmd, done <-chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
