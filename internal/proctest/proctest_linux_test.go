//go:build linux

package proctest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperParent is not a test: run by TestChildDiesWithKilledParent as a
// stand-in test binary, it starts `sleep 60` (tied to it when PROCTEST_TIE is
// set), prints the sleep's PID and waits to be killed.
func TestHelperParent(t *testing.T) {
	if os.Getenv("PROCTEST_HELPER") == "" {
		t.Skip("helper process only")
	}
	cmd := exec.Command("sleep", "60")
	if os.Getenv("PROCTEST_TIE") != "" {
		DieWithParent(cmd)
	}
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(cmd.Process.Pid)
	select {}
}

// alive reports whether pid is a process that has not ended (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// startOrphan runs the helper parent, kills it with SIGKILL (as go test's
// -timeout or an operator's kill would end a test binary that runs no
// cleanup), and returns its child's PID.
func startOrphan(t *testing.T, tie bool) int {
	t.Helper()
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperParent$")
	helper.Env = append(os.Environ(), "PROCTEST_HELPER=1")
	if tie {
		helper.Env = append(helper.Env, "PROCTEST_TIE=1")
	}
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		helper.Process.Kill()
		t.Fatalf("helper: %q, %v", line, err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	helper.Process.Kill()
	helper.Wait()
	return pid
}

// TestChildDiesWithKilledParent: a child started with DieWithParent ends when
// the process that started it is killed; one started without it lives on (the
// orphan this package exists to prevent), which shows the check can fail.
func TestChildDiesWithKilledParent(t *testing.T) {
	tied := startOrphan(t, true)
	deadline := time.Now().Add(10 * time.Second)
	for alive(tied) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still running 10 s after its parent was killed", tied)
		}
		time.Sleep(20 * time.Millisecond)
	}
	loose := startOrphan(t, false)
	time.Sleep(500 * time.Millisecond)
	if !alive(loose) {
		t.Errorf("a child started without DieWithParent died with its parent too: the check above proves nothing")
	}
}

func TestDieWithParentKeepsOtherAttributes(t *testing.T) {
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	DieWithParent(cmd)
	if !cmd.SysProcAttr.Setpgid || cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL {
		t.Errorf("SysProcAttr %+v: want Setpgid kept and Pdeathsig SIGKILL", cmd.SysProcAttr)
	}
}
