package proxy

import (
	"testing"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/usage"
)

// usageRecorder counts relayed bytes in a usage store as the daemon's recorder
// does (cmd/sockshaper/quota.go), on top of rec.
type usageRecorder struct {
	Recorder
	store *usage.Store
}

func (r usageRecorder) Transferred(user, app, direction, transport string, n int64) {
	r.Recorder.Transferred(user, app, direction, transport, n)
	if direction == "upload" {
		r.store.Add(user, n, 0)
	} else {
		r.store.Add(user, 0, n)
	}
}

// withQuota counts usage in a store where every user has a daily allowance
// of daily bytes (refusing over it), and reports bytes to it.
func withQuota(tb testing.TB, daily configs.ByteSize) harnessOption {
	cfg := &configs.Config{Shaping: configs.Shaping{DefaultGroup: "all", Groups: map[string]configs.Limit{
		"all": {Quota: &configs.Quota{Daily: daily}}}}}
	store, err := usage.New(cfg, usage.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return func(o *Options) {
		o.Usage = store
		o.Recorder = usageRecorder{Recorder: o.Recorder, store: store}
	}
}

// BenchmarkRelayDownloadQuota is BenchmarkRelayDownload for a user with an
// allowance far from used up: each step moves within the direction's byte
// grant, renewed at every report. Allocations per MiB read are those of
// BenchmarkRelayDownload.
func BenchmarkRelayDownloadQuota(b *testing.B) {
	benchmarkDownload(b, withQuota(b, 1<<50))
}
