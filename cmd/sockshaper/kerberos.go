package main

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
)

// kerberosListing reads auth.kerberos's keytab as a start or reload would (a key
// of an accepted type for every service name) and returns check-config's lines
// about it: one per principal and key version, with the key types. It returns
// nothing when Kerberos is off; errors name the file.
func kerberosListing(cfg *configs.Config) ([]string, error) {
	k := cfg.Auth.Kerberos
	if k.KeytabFile == "" {
		return nil, nil
	}
	v, err := auth.NewKerberos(k, auth.KerberosOptions{Replay: auth.NewReplayCache(1)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Source, err)
	}
	var lines []string
	index := map[string]int{}
	for _, e := range v.Keytab() {
		key := fmt.Sprintf("%s kvno %d", e.Principal, e.KVNO)
		i, ok := index[key]
		if !ok {
			i, index[key] = len(lines), len(lines)
			lines = append(lines, "keytab "+k.KeytabFile+": "+key+":")
		}
		lines[i] += " " + e.Enctype + ","
	}
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], ",")
	}
	return lines, nil
}

// kerberosState is the daemon's Kerberos login across reloads: the replay
// cache, which a reload must not forget (a token accepted before it could be
// replayed after), the verifier in use with its config, and the watch that
// reads its keytab again when the file changes.
type kerberosState struct {
	log    *slog.Logger
	replay *auth.ReplayCache

	mu    sync.Mutex
	cfg   configs.Kerberos
	v     *auth.Kerberos // nil while Kerberos is off
	ctx   context.Context
	watch context.CancelFunc // ends v's watch; nil when none runs
}

func newKerberosState(log *slog.Logger) *kerberosState {
	return &kerberosState{log: log, replay: auth.NewReplayCache(0)}
}

// withTickets adds auth.kerberos's ticket login to passwords (the config's
// password verifier, nil without one), with dir's entries for the users'
// groups when there is a directory. The Kerberos verifier is the one in use
// when its config is unchanged, its keytab read again (what SIGHUP asks), or
// a new one sharing the replay cache; [kerberosState.use] makes it the one in
// use once the whole reload succeeded. A keytab that cannot be read is an
// error naming the file, and the keys in use stay. Without a keytab it
// returns passwords and a nil verifier.
func (k *kerberosState) withTickets(cfg *configs.Config, passwords auth.Verifier, dir *auth.Directory) (auth.Verifier, *auth.Kerberos, error) {
	kc := cfg.Auth.Kerberos
	if kc.KeytabFile == "" {
		return passwords, nil, nil
	}
	k.mu.Lock()
	v := k.v
	same := v != nil && reflect.DeepEqual(k.cfg, kc)
	k.mu.Unlock()
	var err error
	if same {
		var keys []auth.KeytabEntry
		if keys, err = v.Reload(); err == nil {
			k.log.Info("keytab reloaded", "file", kc.KeytabFile, "keys", len(keys))
		}
	} else {
		v, err = auth.NewKerberos(kc, auth.KerberosOptions{Replay: k.replay, Logger: k.log})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.Source, err)
	}
	var lookup auth.UserLookup
	if dir != nil {
		lookup = dir.Lookup(kc.LDAPUserFilter)
	}
	return auth.WithTickets(passwords, v, lookup), v, nil
}

// use makes v (nil: Kerberos off) the verifier in use for kc, and moves the
// keytab watch to it once the daemon serves ([kerberosState.run]).
func (k *kerberosState) use(v *auth.Kerberos, kc configs.Kerberos) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if v == k.v {
		return
	}
	if k.watch != nil {
		k.watch()
		k.watch = nil
	}
	k.v, k.cfg = v, kc
	k.startWatch()
	if v != nil {
		k.log.Info("kerberos login", "keytab", kc.KeytabFile, "keys", len(v.Keytab()),
			"service_names", kc.ServiceNames, "realms", kc.Realms, "user_name", kc.UserName)
	}
}

// run watches the keytab of the verifier in use, and of those reloads put in
// use, until ctx ends (the daemon's life).
func (k *kerberosState) run(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ctx = ctx
	k.startWatch()
}

// startWatch starts the watch of k.v under k.ctx; the caller holds mu.
func (k *kerberosState) startWatch() {
	if k.v == nil || k.ctx == nil || k.watch != nil {
		return
	}
	ctx, cancel := context.WithCancel(k.ctx)
	k.watch = cancel
	go k.v.Watch(ctx, auth.DefaultKeytabPoll)
}
