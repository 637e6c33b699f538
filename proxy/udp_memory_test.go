package proxy

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

var udpMemAssociations = flag.Int("udp-associations", 400, "associations TestUDPAssociationMemory opens")

// memNow returns the heap in use after a full collection, and the resident set
// size, in bytes.
func memNow(t *testing.T) (heap, rss int64) {
	t.Helper()
	runtime.GC()
	runtime.GC() // a second cycle empties the sync.Pools' victim caches
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	return int64(ms.HeapInuse), rss
}

// TestUDPAssociationMemory opens many associations that each relayed one
// 60 KiB datagram and answer, as a call's first large packet would, and checks
// what each costs while it waits for the next: no relay buffer, only its
// socket, goroutines and tables. It then closes them and checks that the heap
// comes back.
func TestUDPAssociationMemory(t *testing.T) {
	n := *udpMemAssociations
	h := newHarness(t, fmt.Sprintf("limits: {max_sessions: %d, max_sessions_per_client_ip: %d, max_sessions_per_user: %d}\n", 4*n, 4*n, 4*n))
	echo := startUDPEcho(t, "127.0.0.1")
	// One message and one receive buffer for all, so that the test's own garbage
	// does not blur the resident set size.
	msg := udpMsg(echo.addr, strings.Repeat("v", 60<<10))
	buf := make([]byte, 64<<10)
	heap0, rss0 := memNow(t)
	clients := make([]*udpClient, n)
	for i := range clients {
		c := associateUDP(t, h.addr, false)
		c.sendRaw(msg)
		c.udp.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, _, err := c.udp.ReadFromUDPAddrPort(buf); err != nil || got != len(msg) {
			t.Fatalf("association %d: the 60 KiB datagram came back as %d bytes, %v", i, got, err)
		}
		clients[i] = c
	}
	heap1, rss1 := memNow(t)
	perHeap, perRSS := (heap1-heap0)/int64(n), (rss1-rss0)/int64(n)
	for i, c := range clients {
		c.ctl.Close()
		c.udp.Close()
		clients[i] = nil
	}
	waitFor(t, "associations closed", func() bool { return h.rec.get("closed udp_associate other ok") == int64(n) })
	heap2, rss2 := memNow(t)
	t.Logf("%d associations, each after one 60 KiB datagram: %d B heap and %d B RSS each while open; "+
		"after they closed, heap %+d B and RSS %+d B from before they opened",
		n, perHeap, perRSS, heap2-heap0, rss2-rss0)
	// The relay buffer alone is 64 KiB; what an association needs besides (its
	// session, tables and both ends' sockets in this process) is a few KiB.
	if limit := int64(16 << 10); perHeap > limit {
		t.Errorf("each waiting association holds %d B of heap, want at most %d", perHeap, limit)
	}
	// What stays is the test's: its cleanup functions and the proxy's log.
	if limit := int64(8 << 10); (heap2-heap0)/int64(n) > limit {
		t.Errorf("after the associations closed, %d B of heap each stayed, want at most %d", (heap2-heap0)/int64(n), limit)
	}
}
