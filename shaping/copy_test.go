package shaping

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// chunkSource yields left bytes in reads as large as asked, then io.EOF.
type chunkSource struct{ left int }

func (s *chunkSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), s.left)
	s.left -= n
	return n, nil
}

// meanCV returns the sum and the coefficient of variation of xs.
func meanCV(xs []int64) (sum int64, cv float64) {
	for _, x := range xs {
		sum += x
	}
	mean := float64(sum) / float64(len(xs))
	var sq float64
	for _, x := range xs {
		sq += (float64(x) - mean) * (float64(x) - mean)
	}
	return sum, math.Sqrt(sq/float64(len(xs))) / mean
}

// runSessions runs one Copy per session of user bob, all sharing bob's download
// bucket of r, until ctx ends, and returns the bytes each wrote from time from on.
func runSessions(ctx context.Context, r *Registry, sessions int, from time.Time) []int64 {
	got := make([]int64, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		l := r.Acquire(Who{User: "bob"}, []string{"web", "skype"}[i%2])
		wg.Go(func() {
			defer l.Release()
			Copy(ctx, io.Discard, endless{}, l.Download(), func(n int, _ time.Duration) {
				if !time.Now().Before(from) {
					got[i] += int64(n)
				}
			})
		})
	}
	wg.Wait()
	return got
}

func oneGroup(download configs.Rate) configs.Shaping {
	return configs.Shaping{DefaultGroup: "g", Groups: map[string]configs.Limit{"g": {Download: download}}}
}

// TestCopyFairness checks that 4 and 16 sessions of one user share the user's
// 4 MiB/s download bucket about equally and together get its rate.
func TestCopyFairness(t *testing.T) {
	for _, sessions := range []int{4, 16} {
		t.Run(fmt.Sprint(sessions), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				got := runSessions(ctx, NewRegistry(oneGroup(4*mib)), sessions, time.Time{})
				sum, cv := meanCV(got)
				within(t, "bytes of all sessions", sum, 40*mib, 0.02)
				if cv >= 0.10 {
					t.Errorf("coefficient of variation %.3f, want < 0.10; bytes per session %v", cv, got)
				}
				t.Logf("%d sessions: %d bytes, CV %.4f", sessions, sum, cv)
			})
		})
	}
}

// TestCopyFairnessRealTime is TestCopyFairness on the real clock, where timers
// fire late and goroutines start unevenly. The first 200 ms are not counted:
// whichever session starts first takes the burst, which is the bucket working,
// not unfairness.
func TestCopyFairnessRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 1.2 s of real time")
	}
	const warmUp, measure = 200 * time.Millisecond, time.Second
	ctx, cancel := context.WithTimeout(context.Background(), warmUp+measure)
	defer cancel()
	got := runSessions(ctx, NewRegistry(oneGroup(16*mib)), 16, time.Now().Add(warmUp))
	sum, cv := meanCV(got)
	within(t, "bytes of all sessions in 1 s", sum, 16*mib, 0.05)
	if cv >= 0.10 {
		t.Errorf("coefficient of variation %.3f, want < 0.10; bytes per session %v", cv, got)
	}
	t.Logf("16 sessions on the real clock: %d bytes in 1 s, CV %.4f", sum, cv)
}

func TestCopyCancelWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 1 KiB/s: after the burst, chunks of fairRound's worth (512 B) every 0.5 s.
		c := chainOf(newBucket(kib, 64*kib))
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(750 * time.Millisecond) // within the wait for the second chunk after the burst
			cancel()
		}()
		start := time.Now()
		n, err := Copy(ctx, io.Discard, endless{}, c, nil)
		if err != context.Canceled || n != 64*kib+512 || time.Since(start) != 750*time.Millisecond {
			t.Fatalf("Copy = %d, %v after %v; want the burst and one chunk, canceled after 750ms", n, err, time.Since(start))
		}
	})
}

// TestCopyCancelBlockedRead checks the contract with a caller that closes the
// connection when the context ends: the read error is reported as ctx.Err().
func TestCopyCancelBlockedRead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() { server.Close() })
	defer stop()
	done := make(chan error)
	go func() {
		_, err := Copy(ctx, io.Discard, server, chainOf(newBucket(mib, 0)), nil)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Copy = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Copy still blocked after the context ended and the conn closed")
	}
}

type errWriter struct {
	n   int // bytes accepted before failing
	err error
}

func (w *errWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.n)
	w.n -= n
	if n < len(p) {
		return n, w.err
	}
	return n, nil
}

func TestCopyErrors(t *testing.T) {
	boom := errors.New("boom")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		dst   io.Writer
		src   io.Reader
		wantN int64
		err   error
	}{
		{"eof", context.Background(), io.Discard, &chunkSource{left: 100 * kib}, 100 * kib, nil},
		{"read error", context.Background(), io.Discard, io.MultiReader(&chunkSource{left: 40 * kib}, iotest.ErrReader(boom)), 40 * kib, boom},
		{"write error", context.Background(), &errWriter{n: 50 * kib, err: boom}, endless{}, 50 * kib, boom},
		{"short write", context.Background(), &errWriter{n: 10}, endless{}, 10, io.ErrShortWrite},
		{"ended context", canceled, io.Discard, endless{}, 0, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Copy(tc.ctx, tc.dst, tc.src, chainOf(newBucket(1<<40, 0)), nil)
			if n != tc.wantN || err != tc.err {
				t.Errorf("Copy = %d, %v; want %d, %v", n, err, tc.wantN, tc.err)
			}
		})
	}
}

// TestCopyContentAndObserve checks that bytes arrive intact across chunks and
// that observe sees every chunk with the time waited for it.
func TestCopyContentAndObserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := make([]byte, 128*kib)
		rand.Read(src)
		var dst bytes.Buffer
		var sizes []int
		var waits []time.Duration
		observe := func(n int, waited time.Duration) {
			sizes = append(sizes, n)
			waits = append(waits, waited)
		}
		c := chainOf(newBucket(64*kib, 64*kib), newBucket(0, 0))
		n, err := Copy(context.Background(), &dst, bytes.NewReader(src), c, observe)
		if err != nil || n != int64(len(src)) || !bytes.Equal(dst.Bytes(), src) {
			t.Fatalf("Copy = %d, %v; content equal %v", n, err, bytes.Equal(dst.Bytes(), src))
		}
		half := 500 * time.Millisecond // a 32 KiB chunk at 64 KiB/s
		wantSizes := []int{32 * kib, 32 * kib, 32 * kib, 32 * kib}
		wantWaits := []time.Duration{0, 0, half, half}
		if fmt.Sprint(sizes) != fmt.Sprint(wantSizes) || fmt.Sprint(waits) != fmt.Sprint(wantWaits) {
			t.Errorf("observed sizes %v waits %v; want %v %v", sizes, waits, wantSizes, wantWaits)
		}
	})
}

// TestPacerRate checks that a Pacer holds the chain's rate and reuses its timer.
func TestPacerRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(chainOf(newBucket(4*mib, 64*kib)))
		defer p.Stop()
		start := time.Now()
		var n int
		for n < 40*mib+64*kib {
			if _, err := p.Wait(context.Background(), 32*kib); err != nil {
				t.Fatal(err)
			}
			n += 32 * kib
		}
		// 40 MiB at 4 MiB/s after a 64 KiB burst: 10 s, give or take one chunk.
		if d := time.Since(start); d < 9990*time.Millisecond || d > 10010*time.Millisecond {
			t.Errorf("40 MiB + burst took %v, want 10 s", d)
		}
		if allocs := testing.AllocsPerRun(100, func() { p.Wait(context.Background(), 32*kib) }); allocs != 0 {
			t.Errorf("Pacer.Wait allocates %v times per call", allocs)
		}
	})
}
