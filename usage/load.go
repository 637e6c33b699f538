package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// maxStateSize bounds the usage file read at start: some 200 bytes a user, so
// a million users fit many times over, and a file grown out of all proportion
// is not read whole into memory.
const maxStateSize = 256 << 20

// maxBadLogged bounds the users named one log line each when their entries
// are set aside; the rest are counted in one more line (the file names them).
const maxBadLogged = 20

// badEntry is one user's entry of the usage file that could not be used.
type badEntry struct {
	user   string
	reason string
}

// loaded is what load found in state_dir.
type loaded struct {
	users map[string]*entry
	// bad are the entries set aside, kept in a copy of the file at badFile.
	bad     []badEntry
	badFile string
	// corrupt is set when the whole file could not be read and was moved aside.
	corrupt bool
}

// load reads the usage file. A missing file is no usage. An entry that cannot
// be used (a bad date, a negative count, an unknown key, a user named twice)
// is left out: the file is copied aside whole (usage.json.bad-TIME) before it
// is written again without the entry, each such user is logged once, and the
// others keep their counts. A file that cannot be read or parsed at all is
// renamed aside (usage.json.corrupt-TIME) and logged; counting then starts
// from zero. Nothing is written over: load fails only when a file to keep
// aside cannot be kept.
func (d *stateDir) load(log *slog.Logger) (loaded, error) {
	data, err := readStateFile(d.path())
	if errors.Is(err, fs.ErrNotExist) {
		return loaded{users: map[string]*entry{}}, nil
	}
	var users map[string]*entry
	var bad []badEntry
	if err == nil {
		users, bad, err = parseState(data)
	}
	if err != nil {
		return d.moveAside(log, err)
	}
	if len(bad) == 0 {
		return loaded{users: users}, nil
	}
	kept, err := d.keepBad(data)
	if err != nil {
		return loaded{}, fmt.Errorf("usage state %s has %d entries that cannot be used, and could not be copied aside: %w", d.path(), len(bad), err)
	}
	logBad(log, bad, kept)
	return loaded{users: users, bad: bad, badFile: kept}, nil
}

// readStateFile reads the usage file at path: not through a symbolic link (an
// error, so the link is moved aside), only a regular file (a FIFO would block
// the start), at most maxStateSize bytes.
func readStateFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err == nil && len(data) > maxStateSize {
		err = fmt.Errorf("larger than %d MiB", maxStateSize>>20)
	}
	return data, err
}

// moveAside renames an unusable usage file to usage.json.corrupt-TIME, never
// over another file, and logs it.
func (d *stateDir) moveAside(log *slog.Logger, why error) (loaded, error) {
	aside, err := d.asideName("corrupt")
	if err == nil {
		err = os.Rename(d.path(), aside)
	}
	if err != nil {
		return loaded{}, fmt.Errorf("usage state %s is unreadable (%v) and could not be moved aside: %w", d.path(), why, err)
	}
	log.Error("usage state unreadable; moved aside, counting from zero", "path", d.path(), "moved_to", aside, "err", why)
	return loaded{users: map[string]*entry{}, corrupt: true}, nil
}

// keepBad copies the usage file's bytes to usage.json.bad-TIME (a new file,
// synced) and returns its name.
func (d *stateDir) keepBad(data []byte) (string, error) {
	name, err := d.asideName("bad")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, syncDir(d.dir)
}

// logBad names each user whose entry was set aside, once, up to maxBadLogged.
func logBad(log *slog.Logger, bad []badEntry, kept string) {
	for _, b := range bad[:min(len(bad), maxBadLogged)] {
		log.Error("usage state entry unusable; set aside, the user counts from zero",
			"user", clip(b.user), "err", b.reason, "kept_in", kept)
	}
	if n := len(bad) - maxBadLogged; n > 0 {
		log.Error("more usage state entries unusable; set aside, those users count from zero", "users", n, "kept_in", kept)
	}
}

// clip shortens a name from the usage file for a log line.
func clip(s string) string {
	const most = 128
	if len(s) <= most {
		return s
	}
	return s[:most] + "..."
}

// parseState reads a usage file. It fails when it does not understand the
// file as a whole (not JSON, another version, a key it does not know); an
// entry it does not fully understand is returned among bad, the rest in users.
func parseState(data []byte) (users map[string]*entry, bad []badEntry, err error) {
	var st struct {
		Version int       `json:"version"`
		Saved   time.Time `json:"saved"`
		Users   rawUsers  `json:"users"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, nil, fmt.Errorf("parse: %w", err)
	}
	if dec.More() {
		return nil, nil, errors.New("parse: data after the JSON object")
	}
	if st.Version != stateVersion {
		return nil, nil, fmt.Errorf("version %d, want %d", st.Version, stateVersion)
	}
	users = make(map[string]*entry, len(st.Users))
	named := make(map[string]int, len(st.Users))
	for _, u := range st.Users {
		named[u.name]++
	}
	for _, u := range st.Users {
		switch n := named[u.name]; {
		case n > 1: // which one is right? Neither is used
			named[u.name] = 0 // set aside once
			bad = append(bad, badEntry{u.name, fmt.Sprintf("named %d times", n)})
		case n == 1:
			e, err := parseUser(u.raw)
			if err != nil {
				bad = append(bad, badEntry{u.name, clip(err.Error())})
				continue
			}
			users[u.name] = e
		}
	}
	return users, bad, nil
}

// parseUser reads one user's entry, refusing anything it does not fully
// understand.
func parseUser(raw json.RawMessage) (*entry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var u fileUser
	if err := dec.Decode(&u); err != nil {
		return nil, err
	}
	day, err1 := time.Parse("2006-01-02", u.Day)
	month, err2 := time.Parse("2006-01", u.Month)
	switch {
	case err1 != nil || err2 != nil:
		return nil, fmt.Errorf("day %.20q or month %.20q is not a date", u.Day, u.Month)
	case u.DayUpload < 0 || u.DayDownload < 0 || u.MonthUpload < 0 || u.MonthDownload < 0:
		return nil, errors.New("negative count")
	}
	e := &entry{
		day:   [2]int64{u.DayUpload, u.DayDownload},
		month: [2]int64{u.MonthUpload, u.MonthDownload},
		at:    period{day: dateKey(day), month: dateKey(month) / 100},
	}
	if e.at.day/100 != e.at.month {
		e.day = [2]int64{} // a day of another month is over anyway
	}
	return e, nil
}

// rawUser is one entry of the users object, undecoded.
type rawUser struct {
	name string
	raw  json.RawMessage
}

// rawUsers is the users object in file order, every entry of a name kept, so
// that a name given twice is noticed rather than silently the last one.
type rawUsers []rawUser

// UnmarshalJSON reads a JSON object (or null) of entries.
func (r *rawUsers) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("users is not an object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		*r = append(*r, rawUser{name: tok.(string), raw: raw})
	}
	_, err = dec.Token()
	return err
}
