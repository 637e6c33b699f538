package auth

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultKeytabPoll is how often [Kerberos.Watch] looks whether the keytab
// changed on disk: a rotated key is picked up within seconds, at the cost of
// one stat a poll.
const DefaultKeytabPoll = 5 * time.Second

// fileStamp tells one version of a file from another: a rewrite in place changes
// the modification time and usually the size, a rename over it the inode.
type fileStamp struct {
	mod   int64 // Unix nanoseconds: time.Time values do not compare with ==
	size  int64
	inode uint64
}

func stampOf(f *os.File) (fileStamp, error) {
	st, err := f.Stat()
	if err != nil {
		return fileStamp{}, err
	}
	return stampOfInfo(st), nil
}

func stampOfInfo(st os.FileInfo) fileStamp {
	return fileStamp{mod: st.ModTime().UnixNano(), size: st.Size(), inode: inodeOf(st)}
}

// keytabFile is a keytab file's keys, replaced whole by a reload that read a
// good file and kept otherwise: a rotation never leaves a moment without keys,
// and a half-written or broken file changes nothing.
type keytabFile struct {
	path     string
	services []string
	allowed  []int32

	cur atomic.Pointer[keySet]

	mu     sync.Mutex // serialises reloads
	failed fileStamp  // the version that last failed, so that Watch logs it once
}

func openKeytabFile(path string, services []string, allowed []int32) (*keytabFile, error) {
	f := &keytabFile{path: path, services: services, allowed: allowed}
	if _, err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads the file and, if it is a keytab with a usable key for every
// service, makes its keys the current ones. On error the old keys stay, and the
// version that failed is remembered so that Watch does not retry it.
func (f *keytabFile) reload() ([]KeytabEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before, statErr := os.Stat(f.path) // before reading: a change while reading is retried
	ks, err := readKeySet(f.path)
	if err == nil {
		if err = ks.covers(f.services, f.allowed); err != nil {
			err = &keytabError{path: f.path, err: err}
		}
	}
	if err != nil {
		if statErr == nil {
			f.failed = stampOfInfo(before)
		}
		return nil, err
	}
	f.cur.Store(ks)
	return ks.entries, nil
}

// changed reports whether the file on disk is another version than the keys
// in use and than the version that last failed.
func (f *keytabFile) changed() bool {
	st, err := os.Stat(f.path)
	if err != nil {
		return false // a missing file keeps the keys in use
	}
	s := stampOfInfo(st)
	f.mu.Lock()
	defer f.mu.Unlock()
	return s != f.cur.Load().stamp && s != f.failed
}

type keytabError struct {
	path string
	err  error
}

func (e *keytabError) Error() string { return "keytab " + e.path + ": " + e.err.Error() }
func (e *keytabError) Unwrap() error { return e.err }

// Reload reads the keytab again (on SIGHUP) and returns its keys' listing. On
// error, which names the file, the keys in use stay in use.
func (k *Kerberos) Reload() ([]KeytabEntry, error) { return k.keytab.reload() }

// Keytab lists the keys in use.
func (k *Kerberos) Keytab() []KeytabEntry { return k.keytab.cur.Load().entries }

// Watch reloads the keytab whenever the file changes on disk, looking every
// interval (zero means [DefaultKeytabPoll]), until ctx ends. It logs each reload
// and each failure (once per version of the file); a failure keeps the keys in
// use. Run it on its own goroutine.
func (k *Kerberos) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultKeytabPoll
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !k.keytab.changed() {
			continue
		}
		entries, err := k.keytab.reload()
		if err != nil {
			k.log.Error("keytab reload failed; the keys in use stay", "file", k.keytab.path, "err", err)
			continue
		}
		k.log.Info("keytab reloaded", "file", k.keytab.path, "keys", len(entries))
	}
}
