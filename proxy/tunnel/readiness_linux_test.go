//go:build linux

package tunnel

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (local, peer *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := <-accepted
	if p == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); p.Close() })
	return c.(*net.TCPConn), p.(*net.TCPConn)
}

// waitQueued polls until the socket has want bytes queued: loopback may deliver
// one write in several segments.
func waitQueued(t *testing.T, r *readiness, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := r.wait()
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("wait reports %d bytes queued, want %d", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReadinessWaitCountsQueuedBytesWithoutReading(t *testing.T) {
	local, peer := tcpPair(t)
	r := newReadiness(local)
	// More than one loopback segment (its MTU is 64 KiB), less than what a fresh
	// socket's receive window takes: 100 KiB did not fit under load once (the
	// window stopped the sender at 96 KiB).
	payload := bytes.Repeat([]byte("x"), 80<<10)
	go peer.Write(payload)
	waitQueued(t, r, len(payload))
	// The probe consumed nothing: every byte is still there to read.
	got := make([]byte, len(payload))
	local.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readFull(local, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("after wait, read %d bytes, err %v", len(got), err)
	}
	peer.Close()
	if n, err := r.wait(); n != 0 || err != nil {
		t.Fatalf("wait at EOF = %d, %v; want 0, nil", n, err)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestReadinessRead(t *testing.T) {
	tests := []struct {
		name    string
		send    []byte // written by the peer before the read; nil: nothing
		close   bool   // the peer closes after sending
		want    []byte
		timeout bool
	}{
		{name: "small message", send: []byte("hello"), want: []byte("hello")},
		{name: "fills the buffer", send: bytes.Repeat([]byte("y"), smallReadSize+100), want: bytes.Repeat([]byte("y"), smallReadSize)},
		{name: "EOF", close: true, want: []byte{}},
		{name: "silence until the deadline", timeout: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			local, peer := tcpPair(t)
			r := newReadiness(local)
			if tc.send != nil {
				peer.Write(tc.send)
				waitQueued(t, r, len(tc.send))
			}
			if tc.close {
				peer.Close()
			}
			local.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if !tc.timeout {
				local.SetReadDeadline(time.Now().Add(5 * time.Second))
			}
			got, err := r.read()
			if tc.timeout {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read = %d bytes, %v; want the deadline error", len(got), err)
				}
				if r.buf != nil {
					t.Fatal("a read that found nothing holds a buffer")
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("read = %q (%d bytes), %v; want %d bytes", trim(got), len(got), err, len(tc.want))
			}
			if len(tc.want) == 0 && r.buf != nil {
				t.Fatal("a read at EOF holds a buffer")
			}
			r.release()
			if r.buf != nil {
				t.Fatal("release kept the buffer")
			}
		})
	}
}

func trim(b []byte) []byte { return b[:min(len(b), 16)] }

func TestReadinessReadAllocatesNothing(t *testing.T) {
	local, peer := tcpPair(t)
	r := newReadiness(local)
	msg := make([]byte, 64)
	local.SetReadDeadline(time.Now().Add(time.Minute))
	allocs := testing.AllocsPerRun(200, func() {
		peer.Write(msg)
		if got, err := r.read(); err != nil || len(got) == 0 {
			t.Fatalf("read = %d bytes, %v", len(got), err)
		}
		r.release()
	})
	// A pool miss after a GC may allocate a buffer now and then; a steady
	// allocation per read would show as 1 or more.
	if allocs >= 0.5 {
		t.Fatalf("%.2f allocations per read, want none", allocs)
	}
}

func TestSockWriterWritesWhole(t *testing.T) {
	local, peer := tcpPair(t)
	s := newSockWriter(local)
	// Larger than the socket buffers: the write waits while the peer reads.
	big := bytes.Repeat([]byte("z"), 4<<20)
	got := make(chan []byte)
	go func() {
		b := make([]byte, len(big))
		n, _ := readFull(peer, b)
		got <- b[:n]
	}()
	local.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := s.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("peer read %d bytes, not what was written", len(b))
	}
	peer.Close()
	// The peer's reset shows up as an error, not as a short write reported as whole.
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = s.Write(big[:1024])
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
}
