package shaping

import (
	"context"
	"crypto/tls"
	"io"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// fastChain is a chain of four limited buckets, rate 1 TiB/s: every chunk takes
// tokens from each, and none ever waits.
func fastChain() *Chain {
	return chainOf(newBucket(1<<40, 0), newBucket(1<<40, 0), newBucket(1<<40, 0), newBucket(1<<40, 0))
}

// TestCopyAllocs checks that Copy allocates nothing per chunk, whether chunks
// pass at once or wait: a copy of 1,000 chunks allocates no more than one of 10.
// The slack of one is for the race detector, under which sync.Pool drops a
// random share of what is put back.
func TestCopyAllocs(t *testing.T) {
	allocs := func(c *Chain, chunks int) float64 {
		src := &chunkSource{}
		return testing.AllocsPerRun(5, func() {
			src.left = chunks * c.ChunkSize()
			if _, err := Copy(context.Background(), io.Discard, src, c, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	// 32 KiB bursts keep chunks small: AllocsPerRun counts the whole process's
	// allocations, so a long run (1,000 MaxChunk chunks is 1 GiB) picks up the
	// runtime's own.
	fast := chainOf(newBucket(1<<40, 32<<10), newBucket(1<<40, 32<<10))
	if few, many := allocs(fast, 10), allocs(fast, 1000); many > few+1 {
		t.Errorf("Copy without waits: %v allocations for 10 chunks, %v for 1000", few, many)
	}
	synctest.Test(t, func(t *testing.T) {
		slow := chainOf(newBucket(32<<10, configs.ByteSize(32<<10)))
		if few, many := allocs(slow, 10), allocs(slow, 1000); many > few+1 {
			t.Errorf("Copy with a wait per chunk: %v allocations for 10 chunks, %v for 1000", few, many)
		}
	})
}

// TestCopyAllocsSharedBucket is TestCopyAllocs on a shared bucket, where every
// chunk takes the user's turn, queues behind another user's session and
// often refills the user's balance: still nothing allocated per chunk.
func TestCopyAllocsSharedBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(configs.Shaping{Global: configs.Limit{Download: 64 << 10}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		other := r.Acquire(Who{User: "other"}, Other)
		defer other.Release()
		go Copy(ctx, io.Discard, endless{}, other.Download(), nil)
		mine := r.Acquire(Who{User: "mine"}, Other)
		defer mine.Release()
		src := &chunkSource{}
		allocs := func(chunks int) float64 {
			return testing.AllocsPerRun(5, func() {
				src.left = chunks * mine.Download().ChunkSize()
				if _, err := Copy(ctx, io.Discard, src, mine.Download(), nil); err != nil {
					t.Fatal(err)
				}
			})
		}
		start := time.Now()
		few, many := allocs(10), allocs(200)
		if many > few+1 {
			t.Errorf("Copy on a shared bucket: %v allocations for 10 chunks, %v for 200", few, many)
		}
		t.Logf("%v allocations for 10 chunks, %v for 200; %v of bubble time", few, many, time.Since(start))
	})
}

// BenchmarkCopyShaped measures one MaxChunk chunk through a chain of four
// limited buckets that never make it wait; allocs/op is per chunk.
func BenchmarkCopyShaped(b *testing.B) {
	benchCopy(b, fastChain())
}

// BenchmarkCopyUnlimited is BenchmarkCopyShaped with every bucket unlimited, the
// cost of the chain when a session is on the shaped path without limits.
func BenchmarkCopyUnlimited(b *testing.B) {
	benchCopy(b, chainOf(newBucket(0, 0), newBucket(0, 0), newBucket(0, 0), newBucket(0, 0)))
}

func benchCopy(b *testing.B, c *Chain) {
	src := &chunkSource{left: b.N * MaxChunk}
	b.SetBytes(MaxChunk)
	b.ReportAllocs()
	b.ResetTimer()
	n, err := Copy(context.Background(), io.Discard, src, c, nil)
	if err != nil || n != int64(b.N)*MaxChunk {
		b.Fatal(n, err)
	}
}

// BenchmarkChainWaitParallel measures Wait of chunks on one shared bucket from
// many goroutines: the contention of many sessions of one user.
func BenchmarkChainWaitParallel(b *testing.B) {
	c := fastChain()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Wait(context.Background(), MaxChunk); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAcquireRelease measures a session's bookkeeping in the registry.
func BenchmarkAcquireRelease(b *testing.B) {
	r := NewRegistry(campus())
	b.ReportAllocs()
	for b.Loop() {
		r.Acquire(Who{User: "bob"}, "skype").Release()
	}
}

// BenchmarkClassify measures classification of a name, an address, an SNI and
// an any-address port.
func BenchmarkClassify(b *testing.B) {
	c := NewClassifier(testClasses())
	targets := []Target{
		{Transport: "tcp", Host: "www.example.org", Port: 443},
		{Transport: "tcp", Addr: netip.MustParseAddr("52.113.7.9"), Port: 443},
		{Transport: "tcp", Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, SNI: "x.googlevideo.com"},
		{Transport: "udp", Addr: netip.MustParseAddr("2001:db8::1"), Port: 3479},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Classify(targets[i%len(targets)])
		i++
	}
}

// BenchmarkParseClientHelloSNI measures parsing Go's default ClientHello, post-
// quantum key share included; the one allocation is the returned name.
func BenchmarkParseClientHelloSNI(b *testing.B) {
	hello := goClientHello(b, &tls.Config{ServerName: "teams.microsoft.com"})
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	for b.Loop() {
		if name, err := ParseClientHelloSNI(hello); err != nil || name == "" {
			b.Fatal(name, err)
		}
	}
}
