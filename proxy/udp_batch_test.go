package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
)

// udpWindow is how many datagrams BenchmarkUDPRelayWindow keeps in flight: as
// bench/udp.sh does, so that the relay finds several queued per wake and reads
// and sends them in batches.
const udpWindow = 32

// BenchmarkUDPRelayWindow sends udpWindow datagrams through the relay to an echo
// server and reads their answers back, per iteration: the batched path, where
// one wake of the relay reads several datagrams and sends them with one system
// call. allocs/op covers the whole process and must be 0, shaped and unshaped.
func BenchmarkUDPRelayWindow(b *testing.B) {
	fast := configs.Shaping{Global: configs.Limit{Upload: 1 << 40, Download: 1 << 40}}
	b.Run("unshaped", func(b *testing.B) { benchmarkUDPRelayWindow(b, nil) })
	b.Run("shaped", func(b *testing.B) { benchmarkUDPRelayWindow(b, shaping.NewRegistry(fast)) })
}

func benchmarkUDPRelayWindow(b *testing.B, sh *shaping.Registry) {
	h := newHarness(b, "", withShaper(sh))
	echo := startUDPEcho(b, "127.0.0.1")
	c := associateUDP(b, h.addr, false)
	msg := udpMsg(echo.addr, strings.Repeat("p", 200))
	buf := make([]byte, 2048)
	c.udp.SetReadDeadline(time.Now().Add(time.Minute))
	b.SetBytes(udpWindow * 200)
	b.ReportAllocs()
	for b.Loop() {
		for range udpWindow {
			c.udp.WriteToUDPAddrPort(msg, c.relay)
		}
		for range udpWindow {
			if _, _, err := c.udp.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
