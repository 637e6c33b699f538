// Command armonpeer is the bare armon/go-socks5 server that bench/compare.sh
// measures beside sockshaper, Dante and microsocks: the wire-protocol library
// sockshaper builds on, with nothing of sockshaper's around it (no limits,
// shaping, metrics or accounting; plaintext credentials; io.Copy relaying, which
// Go turns into splice between two TCP sockets). It shows what sockshaper's own
// core costs or saves against the library alone.
//
// It listens on 127.0.0.1 only and logs the address it serves on standard output.
//
//	armonpeer -listen 127.0.0.1:0 -user NAME -password PW
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	socks5 "github.com/armon/go-socks5"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "armonpeer:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("armonpeer", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	user := fs.String("user", "", "the one user name (RFC 1929)")
	password := fs.String("password", "", "its password, in plain text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *password == "" {
		return errors.New("-user and -password are required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen: %s is not a loopback address", host)
	}
	server, err := socks5.New(&socks5.Config{
		AuthMethods: []socks5.Authenticator{socks5.UserPassAuthenticator{
			Credentials: socks5.StaticCredentials{*user: *password},
		}},
		Logger: log.New(io.Discard, "", 0),
	})
	if err != nil {
		return fmt.Errorf("socks5 server: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving %s\n", ln.Addr())
	return serve(ln, server)
}

// serve accepts connections until the listener closes. The library's own Serve
// returns on the first failed accept, so a server out of descriptors (Go's
// splice holds a pipe, two descriptors, per direction even while it waits:
// about 6 a session) would exit in the middle of a measurement; this one waits
// a moment and goes on, as net/http's server does.
func serve(ln net.Listener, server *socks5.Server) error {
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return err
		}
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go server.ServeConn(conn)
	}
}
