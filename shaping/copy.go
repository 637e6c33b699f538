package shaping

import (
	"context"
	"io"
	"sync"
	"time"
)

// bufPool holds Copy's chunk buffers. Pointers to arrays, not slices, so that
// Put does not allocate a slice header per call.
var bufPool = sync.Pool{New: func() any { return new([MaxChunk]byte) }}

// Copy copies src to dst in chunks of at most chain.ChunkSize() bytes until src
// reports io.EOF, passing each chunk through chain.Wait before writing it. It
// borrows a MaxChunk buffer from a pool and allocates nothing per chunk. Reading
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
	buf := bufPool.Get().(*[MaxChunk]byte)
	defer bufPool.Put(buf)
	var w waiter
	defer w.stop()
	var written int64
	for {
		if err := ctx.Err(); err != nil {
			return written, err
		}
		nr, rerr := src.Read(buf[:chain.ChunkSize()])
		if nr > 0 {
			nw, waited, err := writeChunk(ctx, dst, buf[:nr], chain, &w)
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

// writeChunk waits for chunk's tokens on chain, then writes it to dst.
func writeChunk(ctx context.Context, dst io.Writer, chunk []byte, chain *Chain, w *waiter) (int, time.Duration, error) {
	waited, err := chain.wait(ctx, len(chunk), w)
	if err != nil {
		return 0, waited, err
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
