package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// checkConfig validates a config (the embedded default when path is empty) and loads
// its users file and apps file, as a reload would, and warns (on stderr, still exit
// 0) about users whose bcrypt cost is below 10 and an apps file over 45 days old.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, users, err := loadAll(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := checkStateDir(cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// The directory's files (the service account's password, the CA) are read
	// as a start or reload would; nothing connects. `ldap-test` does.
	_, dir, err := newVerifier(cfg, users, nil, nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var summary []string
	if users != nil {
		summary = append(summary, fmt.Sprintf("%d users from %s", users.Users(), cfg.Auth.UsersFile))
		warnWeakHashes(stderr, users)
	}
	if dir != nil {
		dir.Close()
		summary = append(summary, fmt.Sprintf("directory %s, %d groups mapped", cfg.Auth.LDAP.URL, len(cfg.Auth.LDAP.Groups)))
	}
	keytab, err := kerberosListing(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if k := cfg.Auth.Kerberos; k.KeytabFile != "" {
		summary = append(summary, fmt.Sprintf("Kerberos for %s, realms %s", strings.Join(k.ServiceNames, ", "), strings.Join(k.Realms, ", ")))
	}
	if err := checkTLSFiles(cfg, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if len(summary) == 0 {
		summary = append(summary, "no authentication (loopback clients only)")
	}
	apps, warning := appsFileNote(cfg, time.Now())
	if apps != "" {
		summary = append(summary, apps)
	}
	if warning != "" {
		fmt.Fprintln(stderr, "warning:", warning)
	}
	fmt.Fprintf(stdout, "%s: ok (%s)\n", cfg.Source, strings.Join(summary, "; "))
	for _, line := range keytab {
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintln(stdout, shapingNote(cfg))
	b := proxy.DeriveBudgets(cfg.Limits, proxy.FDLimit())
	fmt.Fprintf(stdout, "budgets at this process's descriptor limit %d: %s\n", b.FDLimit, b)
	if err := b.Fits(); err != nil {
		fmt.Fprintln(stderr, "warning:", err)
	}
	return 0
}

// warnWeakHashes names the users whose hashes are cheap to crack from a stolen
// file. Logins stay safe from timing: a wrong password costs the time of the
// file's strongest hash whatever the user's own cost.
func warnWeakHashes(w io.Writer, users *auth.UsersFile) {
	weak := users.WeakHashes()
	if len(weak) == 0 {
		return
	}
	names := make([]string, len(weak))
	for i, h := range weak {
		names[i] = fmt.Sprintf("%q (line %d, cost %d)", h.User, h.Line, h.Cost)
	}
	fmt.Fprintf(w, "warning: %s: bcrypt cost below %d for %d users: %s; a stolen copy of the file is cheap to crack. "+
		"Rehash them with `sockshaper passwd USER` or `htpasswd -B -C %d`.\n",
		users.Source(), auth.RecommendedCost, len(weak), strings.Join(names, ", "), auth.RecommendedCost)
}

// verifier is users as an auth.Verifier: nil (no authentication) when there is no
// users file, never a nil *UsersFile in a non-nil interface.
func verifier(users *auth.UsersFile) auth.Verifier {
	if users == nil {
		return nil
	}
	return users
}

// newVerifier returns what checks passwords for cfg: the users file, the directory
// of auth.ldap, or both (the file's users first); nil when there is neither. The
// directory is returned too, for its owner to close when it is replaced; it reads
// its files here and connects to nothing until a login comes. log and rec may be
// nil.
func newVerifier(cfg *configs.Config, users *auth.UsersFile, log *slog.Logger, rec auth.DirectoryRecorder) (auth.Verifier, *auth.Directory, error) {
	if cfg.Auth.LDAP.URL == "" {
		return verifier(users), nil, nil
	}
	dir, err := auth.NewDirectory(cfg.Auth.LDAP, auth.DirectoryOptions{Logger: log, Recorder: rec})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.Source, err)
	}
	if users == nil {
		return dir, dir, nil
	}
	return auth.NewCombined(users, dir), dir, nil
}

// loadConfig loads the config at path, or the embedded default when path is
// empty: what every sub-command that takes -config means by it.
func loadConfig(path string) (*configs.Config, error) {
	if path == "" {
		return configs.Default()
	}
	return configs.Load(path)
}

// loadAll loads the config (the embedded default when path is empty) and its users
// file, nil when the config has none.
func loadAll(path string) (*configs.Config, *auth.UsersFile, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Auth.UsersFile == "" {
		return cfg, nil, nil
	}
	users, err := auth.LoadUsersFile(cfg.Auth.UsersFile)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: auth.users_file: %w", cfg.Source, err)
	}
	return cfg, users, nil
}

// passwd prints an htpasswd line for USER with a password read from stdin (without
// echo on a terminal).
func passwd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: sockshaper passwd USER  (password on standard input)")
		return 2
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sockshaper passwd:", err)
		return 1
	}
	line, err := auth.HashPassword(args[0], password)
	if err != nil {
		fmt.Fprintln(stderr, "sockshaper passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, line)
	return 0
}

// errMismatch is the refusal of two different passwords typed on a terminal.
var errMismatch = errors.New("the passwords do not match; nothing written")

// readPassword reads the password: on a terminal, twice without echo, and
// refuses two that differ (a typo there locks the user out); from a pipe, one
// line, as scripts send it.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		first, err := prompt(f, stderr, "Password: ")
		if err != nil {
			return "", err
		}
		again, err := prompt(f, stderr, "Retype password: ")
		if err != nil {
			return "", err
		}
		if first != again {
			return "", errMismatch
		}
		return first, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// prompt asks for a password on the terminal f, without echo.
func prompt(f *os.File, stderr io.Writer, text string) (string, error) {
	fmt.Fprint(stderr, text)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}
