package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy"
)

// checkConfig validates a config (the embedded default when path is empty) and loads
// its users file, as a reload would.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, creds, err := loadAll(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	users := "no authentication (loopback clients only)"
	if creds != nil {
		users = fmt.Sprintf("%d users from %s", creds.Users(), cfg.Auth.UsersFile)
	}
	fmt.Fprintf(stdout, "%s: ok (%s)\n", cfg.Source, users)
	return 0
}

// loadAll loads the config (the embedded default when path is empty) and its users
// file.
func loadAll(path string) (*configs.Config, *proxy.Credentials, error) {
	var cfg *configs.Config
	var err error
	if path == "" {
		cfg, err = configs.Default()
	} else {
		cfg, err = configs.Load(path)
	}
	if err != nil {
		return nil, nil, err
	}
	if cfg.Auth.UsersFile == "" {
		return cfg, nil, nil
	}
	creds, err := proxy.LoadCredentials(cfg.Auth.UsersFile, cfg.Auth.CacheTTL)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: auth.users_file: %w", cfg.Source, err)
	}
	return cfg, creds, nil
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
	line, err := proxy.HashPassword(args[0], password)
	if err != nil {
		fmt.Fprintln(stderr, "sockshaper passwd:", err)
		return 1
	}
	fmt.Fprintln(stdout, line)
	return 0
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
