package shaping

import (
	"context"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// fastShared is a config whose every level (user, user×app, app total,
// global) has a rate of 1 TiB/s: every chunk takes tokens from each, and the
// turns of the shared ones, and none ever waits.
func fastShared() configs.Shaping {
	const fast = configs.Rate(1 << 40)
	l := configs.Limit{Upload: fast, Download: fast}
	return configs.Shaping{DefaultGroup: "g", Groups: map[string]configs.Limit{"g": l},
		Apps: map[string]configs.AppLimits{"teams": {PerUser: l, Total: l}}, Global: l}
}

// BenchmarkCopySharedChain is BenchmarkCopyShaped through a lease's chain,
// whose app total and global buckets are shared: the cost of the turns. Like
// the other benchmarks of this file it reports the process's CPU time per
// operation (cpu-ns/op), which other work on a shared machine disturbs less
// than the wall time.
func BenchmarkCopySharedChain(b *testing.B) {
	l := NewRegistry(fastShared()).Acquire(Who{User: "bob"}, "teams")
	defer l.Release()
	defer reportCPU(b)()
	benchCopy(b, l.Download())
}

// BenchmarkCopyShapedCPU is BenchmarkCopyShaped reporting cpu-ns/op: a chain
// of four buckets, none shared.
func BenchmarkCopyShapedCPU(b *testing.B) {
	defer reportCPU(b)()
	benchCopy(b, fastChain())
}

// BenchmarkAcquireReleaseCPU is BenchmarkAcquireRelease reporting cpu-ns/op.
func BenchmarkAcquireReleaseCPU(b *testing.B) {
	r := NewRegistry(fastShared())
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		r.Acquire(Who{User: "bob"}, "teams").Release()
	}
}

// BenchmarkChainWaitParallelUsers measures Wait of 32 KiB chunks from many
// goroutines, each a session of one of 8 users, on fast shared buckets: the
// contention of the turns and the shared limiters.
func BenchmarkChainWaitParallelUsers(b *testing.B) {
	r := NewRegistry(fastShared())
	var next atomic.Int32
	b.ReportAllocs()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		l := r.Acquire(Who{User: "user" + strconv.Itoa(int(next.Add(1)%8))}, "teams")
		defer l.Release()
		for pb.Next() {
			if _, err := l.Download().Wait(context.Background(), 32<<10); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSaturatedSharedBucket moves b.N MiB through a saturated global
// bucket of 256 MiB/s shared by a user with 100 sessions and a user with one,
// and reports the process's CPU time per MiB: what the waits, turns and
// wake-ups cost when the bucket binds. It runs in real time (b.N/256 s).
func BenchmarkSaturatedSharedBucket(b *testing.B) {
	const rate = 256 << 20
	r := NewRegistry(configs.Shaping{Global: configs.Limit{Download: rate}})
	var moved atomic.Int64
	goal := int64(b.N) << 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for u, sessions := range []int{100, 1} {
		for range sessions {
			l := r.Acquire(Who{User: "user" + strconv.Itoa(u)}, Other)
			wg.Go(func() {
				defer l.Release()
				Copy(ctx, io.Discard, endless{}, l.Download(), func(n int, _ time.Duration) {
					if moved.Add(int64(n)) >= goal {
						cancel()
					}
				})
			})
		}
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(moved.Load()>>20), "cpu-ns/MiB")
	b.SetBytes(1 << 20)
}

// reportCPU starts measuring the process's CPU time; the function it returns
// reports it per operation as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
