package usage

import (
	"encoding/json"
	"net/http"
	"slices"
)

// APIPath is where the admin listener serves the usage view.
const APIPath = "/api/v1/users"

// Handler serves s's usage view as JSON (a [Report]): the users active now or
// in the last [RecentlyActive], or with ?all=1 every user with usage this
// month. windows, when not nil, names the shaping windows open now. The view
// names users and what they use: serve it only where the metrics are served,
// on the admin listener.
func Handler(s *Store, windows func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		all := r.URL.Query().Get("all")
		rep := s.Report(s.now(), all == "1" || all == "true")
		if windows != nil {
			if open := windows(); open != nil {
				rep.WindowsOpen = slices.Clone(open)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep) // a client gone away is not ours to report
	})
}
