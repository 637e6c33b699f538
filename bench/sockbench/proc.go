package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is 100
// on every Linux architecture Go supports; reading sysconf(_SC_CLK_TCK) would
// need cgo.
const clockTicks = 100

// procStat is what sockbench reads from /proc/PID/stat.
type procStat struct {
	ppid int
	// cpuTicks is utime+stime+cutime+cstime: the process's own CPU time plus
	// that of its children that have exited and been waited for.
	cpuTicks int64
}

// parseStat parses the content of /proc/PID/stat. The command name may hold
// spaces and parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("%d fields after the name, want 15 or more", len(f))
	}
	var st procStat
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("ppid: %w", err)
	}
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("cpu time: %w", err)
		}
		st.cpuTicks += v
	}
	return st, nil
}

// processTree returns pid and all its descendants, so that forking servers such
// as Dante are measured whole. Processes that vanish while /proc is read are
// left out.
func processTree(pid int) ([]int, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		children[st.ppid] = append(children[st.ppid], child)
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// treeCPUSeconds returns the CPU seconds used so far by pid and its descendants.
func treeCPUSeconds(pid int) (float64, error) {
	tree, err := processTree(pid)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, p := range tree {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		if st, err := parseStat(b); err == nil {
			ticks += st.cpuTicks
		}
	}
	return float64(ticks) / clockTicks, nil
}

// memory is the resident memory of a process tree, in KiB.
type memory struct {
	Processes int   `json:"processes"`
	RSSKiB    int64 `json:"rss_kib"` // sum of VmRSS: counts shared pages once per process
	PSSKiB    int64 `json:"pss_kib"` // sum of Pss: shared pages split between sharers
	FDs       int   `json:"fds"`     // open file descriptors; 0 where /proc/PID/fd is unreadable
}

// treeMemory returns the memory of pid and its descendants.
func treeMemory(pid int) (memory, error) {
	tree, err := processTree(pid)
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, p := range tree {
		rss, err := statusKiB(fmt.Sprintf("/proc/%d/status", p), "VmRSS:")
		if err != nil {
			continue
		}
		pss, _ := statusKiB(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		m.Processes++
		m.RSSKiB += rss
		m.PSSKiB += pss
		m.FDs += len(fds)
	}
	return m, nil
}

// statusKiB returns the value of the line starting with key in a /proc file of
// "Key:   123 kB" lines.
func statusKiB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			return parseKiB(rest)
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// parseKiB parses "   123 kB".
func parseKiB(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("want \"N kB\", got %q", s)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// raiseNofile raises the soft RLIMIT_NOFILE to the hard limit and returns the new
// soft limit: every held session costs this process two descriptors.
func raiseNofile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}
