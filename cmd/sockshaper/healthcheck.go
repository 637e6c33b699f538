package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckFlags declares the flags of the healthcheck command.
func healthcheckFlags(fs *flag.FlagSet, o *options) {
	configFlag(fs, o)
	fs.StringVar(&o.url, "url", "", "`URL` to probe instead of the config's admin_listen, e.g. http://127.0.0.1:9180/readyz")
	// 3 s: well inside Docker's and Kubernetes' probe timeouts, long enough for a
	// loaded host to answer a request that does no work.
	fs.DurationVar(&o.timeout, "timeout", 3*time.Second, "give up after `DURATION`")
}

// healthcheck probes /readyz of a running sockshaper, so a distroless image (no shell,
// no curl) can declare a HEALTHCHECK and systemd or a script can wait for readiness.
// Exit 0 when it answers 200, 1 otherwise; Docker reserves 2, which only a wrong
// invocation returns.
func healthcheck(inv invocation) int {
	if inv.opts.url != "" && inv.opts.configPath != "" {
		return inv.usage("give -config or -url, not both")
	}
	url := inv.opts.url
	if url == "" {
		var err error
		if url, err = readyzURL(inv.opts.configPath); err != nil {
			fmt.Fprintln(inv.stderr, "sockshaper healthcheck:", err)
			return 1
		}
	}
	if err := probe(url, inv.opts.timeout); err != nil {
		fmt.Fprintln(inv.stderr, "sockshaper healthcheck:", err)
		return 1
	}
	fmt.Fprintln(inv.stdout, "ok:", url)
	return 0
}

// readyzURL is the /readyz address of the admin server the config at path (the
// embedded default when empty) describes. A wildcard host is probed on loopback,
// where the admin server also listens.
func readyzURL(path string) (string, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return "", err
	}
	if cfg.AdminListen == "" {
		return "", fmt.Errorf("%s: admin_listen is empty: no admin server to probe", cfg.Source)
	}
	host, port, err := net.SplitHostPort(cfg.AdminListen)
	if err != nil {
		return "", fmt.Errorf("%s: admin_listen: %w", cfg.Source, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// probe GETs url and reports an error unless it answers 200 within timeout. It never
// goes through an HTTP proxy from the environment: the probe is about this host.
func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %v", url, timeout)
	} else if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %q", url, resp.Status, body)
	}
	return nil
}
