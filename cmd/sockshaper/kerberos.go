package main

import (
	"fmt"
	"strings"

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
