package usage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// StateFile is the name of the usage file in state_dir.
	StateFile = "usage.json"
	// lockFile holds the lock that keeps two processes off one state_dir.
	lockFile     = "lock"
	stateVersion = 1
)

// fileState is the usage file: JSON, so that an operator can read and mend it.
type fileState struct {
	Version int                 `json:"version"`
	Saved   time.Time           `json:"saved"`
	Users   map[string]fileUser `json:"users"`
}

// fileUser is one user's counts: the day and month they belong to, in the
// config's time zone, and bytes by direction.
type fileUser struct {
	Day           string `json:"day"`   // 2006-01-02
	Month         string `json:"month"` // 2006-01
	DayUpload     int64  `json:"day_upload"`
	DayDownload   int64  `json:"day_download"`
	MonthUpload   int64  `json:"month_upload"`
	MonthDownload int64  `json:"month_download"`
}

// stateDir is a state folder this process holds the lock of.
type stateDir struct {
	dir  string
	lock *os.File
}

// CheckStateDir checks a state_dir as the daemon would take it, without
// creating or locking anything: an existing dir must be a folder that no
// user but its owner's group may write to (others could replace the usage
// file, or put a link where the daemon opens its lock), and its lock and usage
// files must not be symbolic links. A dir that does not exist yet is fine: the
// daemon creates it, mode 0750. check-config calls it; the daemon's start
// checks the same.
func CheckStateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	if err := checkDirMode(dir, fi); err != nil {
		return err
	}
	for _, name := range []string{lockFile, StateFile} {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("state_dir %s: %s is a symbolic link; sockshaper does not follow links there: remove it", dir, name)
		}
	}
	return nil
}

// checkDirMode refuses a state_dir that is not a folder, or that others may
// write to (the sticky bit does not help: they could still create the names
// the daemon uses before it does).
func checkDirMode(dir string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("state_dir %s is not a folder", dir)
	}
	if m := fi.Mode(); m.Perm()&0o002 != 0 {
		return fmt.Errorf("state_dir %s is writable by every user (mode %04o): anyone on the host could replace the usage kept there; "+
			"make it the daemon's own (chmod o-w %s, or 0750)", dir, octalMode(m), dir)
	}
	return nil
}

// octalMode is m as chmod writes it, with the setuid, setgid and sticky bits.
func octalMode(m fs.FileMode) uint32 {
	o := uint32(m.Perm())
	for _, b := range []struct {
		mode fs.FileMode
		bit  uint32
	}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}} {
		if m&b.mode != 0 {
			o |= b.bit
		}
	}
	return o
}

// openStateDir creates dir if needed, checks it (see [CheckStateDir]), takes
// its lock and checks that files can be written there, so that a bad folder
// stops the daemon at start rather than losing usage later.
func openStateDir(dir string) (*stateDir, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if err := checkDirMode(dir, fi); err != nil {
		return nil, err
	}
	f, err := openLock(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := make([]byte, 32)
		n, _ := f.ReadAt(holder, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state_dir %s is in use by another sockshaper (pid %s)", dir, strings.TrimSpace(string(holder[:n])))
		}
		return nil, fmt.Errorf("state_dir %s: lock: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	// Temp files a crash left behind: nobody else writes here while we hold the lock.
	if stale, err := filepath.Glob(filepath.Join(dir, StateFile+".tmp-*")); err == nil {
		for _, name := range stale {
			os.Remove(name)
		}
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state_dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &stateDir{dir: dir, lock: f}, nil
}

// openLock opens (creating) the lock file without following a symbolic link:
// the daemon truncates it to write its pid, and a link would truncate its
// target.
func openLock(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("state_dir %s: %s is a symbolic link; sockshaper does not follow links there: remove it", dir, lockFile)
	}
	if err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("state_dir %s: %s is not a regular file", dir, lockFile)
	}
	return f, nil
}

func (d *stateDir) path() string { return filepath.Join(d.dir, StateFile) }

// close releases the lock.
func (d *stateDir) close() error { return d.lock.Close() }

// asideName returns a name for a copy of the usage file kept aside, of kind
// (corrupt, bad) and the time, that no file has.
func (d *stateDir) asideName(kind string) (string, error) {
	base := d.path() + "." + kind + "-" + time.Now().UTC().Format("20060102T150405Z")
	for i := 0; ; i++ {
		name := base
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", err
		}
	}
}
