package main

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// frameShards is how many goroutines share the paced source connections. Each
// wakes once per frame, offset by frame/frameShards from the one before, so that
// thousands of connections do not all send in the same instant (a population of
// calls is not in phase) while the wake-ups stay a few thousand per second.
const frameShards = 50

// maxFrameWrite bounds one catch-up write of a connection that fell behind.
const maxFrameWrite = 64 << 10

// framePacer sends every source connection added to it one frame of size bytes
// every frame, as a call's sender does, from a few goroutines instead of one
// sleeping goroutine per connection. A connection that fell behind (a late wake-
// up, a full socket) gets what it owes at its next turn, so that its average
// rate is exact. Writes never block: a full socket is retried at the next frame.
// Safe for concurrent use; close stops it.
type framePacer struct {
	frame  time.Duration
	size   int64
	data   []byte // the bytes every write sends from; never written after start
	shards []*frameShard
	next   atomic.Uint64 // round robin over shards
	writes atomic.Int64  // write calls that sent bytes: frames, or frames merged by a late turn
	stop   chan struct{}
	wg     sync.WaitGroup
}

// frameShard is one goroutine's share of the connections.
type frameShard struct {
	mu    sync.Mutex
	conns []*pacedConn
}

// pacedConn is one source connection and what it has sent since start.
type pacedConn struct {
	raw   syscall.RawConn
	start time.Time
	sent  int64
	dead  bool
}

// newFramePacer starts the shard goroutines of a pacer of frames of bps × frame
// bytes.
func newFramePacer(bps int64, frame time.Duration) *framePacer {
	p := &framePacer{frame: frame, size: int64(frameBytes(bps, frame)), data: pattern(maxFrameWrite), stop: make(chan struct{})}
	for i := range frameShards {
		s := &frameShard{}
		p.shards = append(p.shards, s)
		offset := frame * time.Duration(i) / frameShards
		p.wg.Go(func() { p.run(s, offset) })
	}
	return p
}

// add paces c from now until it fails or the pacer closes.
func (p *framePacer) add(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("frame pacing needs a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	s := p.shards[p.next.Add(1)%uint64(len(p.shards))]
	s.mu.Lock()
	s.conns = append(s.conns, &pacedConn{raw: raw, start: time.Now()})
	s.mu.Unlock()
	return nil
}

// close stops every shard and waits for them.
func (p *framePacer) close() {
	close(p.stop)
	p.wg.Wait()
}

func (p *framePacer) run(s *frameShard, offset time.Duration) {
	first := time.NewTimer(offset)
	defer first.Stop()
	select {
	case <-first.C:
	case <-p.stop:
		return
	}
	tick := time.NewTicker(p.frame)
	defer tick.Stop()
	for {
		p.sendShard(s, time.Now())
		select {
		case <-tick.C:
		case <-p.stop:
			return
		}
	}
}

// sendShard sends every connection of s what it owes at now and drops the
// connections that failed.
func (p *framePacer) sendShard(s *frameShard, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.conns[:0]
	for _, pc := range s.conns {
		p.send(pc, now)
		if !pc.dead {
			live = append(live, pc)
		}
	}
	clear(s.conns[len(live):])
	s.conns = live
}

// send writes what pc owes at now: every frame begun since its start, less what
// it sent. A full socket (EAGAIN) is not an error; the bytes stay owed.
func (p *framePacer) send(pc *pacedConn, now time.Time) {
	owed := (int64(now.Sub(pc.start)/p.frame)+1)*p.size - pc.sent
	if owed <= 0 {
		return
	}
	buf := p.data[:min(owed, maxFrameWrite)]
	var n int
	var werr error
	err := pc.raw.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), buf)
		return true // never wait for room: the next frame retries
	})
	if n > 0 {
		pc.sent += int64(n)
		p.writes.Add(1)
	}
	if err != nil || (werr != nil && !errors.Is(werr, syscall.EAGAIN)) {
		pc.dead = true
	}
}
