package shaping

import (
	"context"
	"io"
	"sync"
	"time"
	"unsafe"
)

// Buffer size classes: powers of two from 4 KiB to 1 MiB, each with its pool,
// so a slow session borrows a small buffer and a fast one a large one.
const (
	minBufShift = 12 // 4 KiB
	maxBufShift = 20 // 1 MiB
)

// bufPools hold Copy's chunk buffers by size class, as pointers to their first
// byte: putting a pointer in a Pool allocates nothing, and a pool miss costs one
// allocation (the array), not two (array and slice header).
var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// getBuf borrows a buffer of at least n bytes (at most 1 MiB); putBuf gives it
// back to class.
func getBuf(n int) ([]byte, int) {
	class := 0
	for class < len(bufPools)-1 && 1<<(minBufShift+class) < n {
		class++
	}
	size := 1 << (minBufShift + class)
	if p, ok := bufPools[class].Get().(*byte); ok {
		return unsafe.Slice(p, size), class
	}
	return make([]byte, size), class
}

func putBuf(b []byte, class int) { bufPools[class].Put(unsafe.SliceData(b)) }

// Copy copies src to dst in chunks of at most chain.ChunkSize() bytes until src
// reports io.EOF, passing each chunk through chain.Wait before writing it. It
// borrows a buffer of the chain's chunk size from a pool and allocates nothing per chunk. Reading
// a chunk only once the previous one was written keeps the unread bytes in the
// kernel, so a throttled session pushes back on its sender through TCP flow
// control.
//
// observe, when not nil, is called after every chunk written with the bytes
// written and the time waited for that chunk, from Copy's goroutine.
//
// Copy returns the bytes written and the first error other than io.EOF. When ctx
// ends, a pending wait ends at once and Copy returns ctx.Err(); a Read or Write
// blocked in the kernel is not interrupted, so the caller closes the connections
// (or sets deadlines) when ctx ends, and the error that follows is reported as
// ctx.Err().
func Copy(ctx context.Context, dst io.Writer, src io.Reader, chain *Chain, observe func(n int, waited time.Duration)) (int64, error) {
	buf, class := getBuf(chain.ChunkSize())
	defer putBuf(buf, class)
	var w waiter
	defer w.stop()
	var written int64
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		want := min(chain.ChunkSize(), len(buf))
		nr, rerr := src.Read(buf[:want])
		if nr > 0 {
			// A read that did not fill its chunk took all there was: a message.
			sparse := nr < want && nr <= SparseMessage
			nw, waited, err := writeChunk(ctx, dst, buf[:nr], sparse, chain, &w)
			written += int64(nw)
			if observe != nil && nw > 0 {
				observe(nw, waited)
			}
			if err != nil {
				return written, ctxErrOr(ctx, err)
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, ctxErrOr(ctx, rerr)
		}
	}
}

// writeChunk takes chunk's tokens on chain (at once for a sparse message, see
// [SparseMessage]; waiting its turn otherwise), then writes it to dst.
func writeChunk(ctx context.Context, dst io.Writer, chunk []byte, sparse bool, chain *Chain, w *waiter) (int, time.Duration, error) {
	var waited time.Duration
	if !sparse || !chain.Allow(len(chunk)) {
		var err error
		if waited, err = chain.wait(ctx, len(chunk), w); err != nil {
			return 0, waited, err
		}
	}
	n, err := dst.Write(chunk)
	if err == nil && n != len(chunk) {
		err = io.ErrShortWrite
	}
	return n, waited, err
}

// ctxErrOr returns ctx's error if it has ended, else err: an I/O error caused by
// the caller closing connections on cancellation is reported as the cancellation.
func ctxErrOr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// waiter sleeps on one timer that it creates on first use and then resets, so a
// copy loop does not allocate a timer per chunk. The zero waiter is ready to use;
// it is not safe for concurrent use.
type waiter struct{ t *time.Timer }

// sleep waits for d or until ctx ends, whichever comes first.
func (w *waiter) sleep(ctx context.Context, d time.Duration) error {
	if w.t == nil {
		w.t = time.NewTimer(d)
	} else {
		w.t.Reset(d) // since Go 1.23 Reset never leaves a stale tick in t.C
	}
	select {
	case <-w.t.C:
		return nil
	case <-ctx.Done():
		w.t.Stop()
		return ctx.Err()
	}
}

// stop releases the timer, if any.
func (w *waiter) stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// Pacer waits for tokens on one chain with one reusable timer, for a caller that
// moves the bytes itself (the proxy splices shaped TCP sessions in the kernel
// instead of copying them through a buffer). Get one from [NewPacer]. A Pacer is
// not safe for concurrent use.
type Pacer struct {
	chain *Chain
	w     waiter
}

// NewPacer returns a Pacer for chain.
func NewPacer(chain *Chain) *Pacer { return &Pacer{chain: chain} }

// Wait is [Chain.Wait] without allocating a timer per call.
func (p *Pacer) Wait(ctx context.Context, n int) (time.Duration, error) {
	return p.chain.wait(ctx, n, &p.w)
}

// Stop releases the timer; p must not be used afterwards.
func (p *Pacer) Stop() { p.w.stop() }
