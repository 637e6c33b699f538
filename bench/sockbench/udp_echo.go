package main

import (
	"fmt"
	"net"
	"net/netip"
)

// udpEchoes are the UDP echo targets of a run, one per association, as each call
// of a campus has its own peer: one echo socket for all would drop datagrams when
// its receive buffer fills, and would be one goroutine for every association.
type udpEchoes []*udpEcho

// startUDPEchoes starts n UDP echoes, each on a free port of 127.0.0.1. On error
// the slice holds those started, for Close.
func startUDPEchoes(n int) (udpEchoes, error) {
	var es udpEchoes
	for range n {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			return es, fmt.Errorf("UDP echo target: %w", err)
		}
		u := &udpEcho{conn: conn, addr: addrPortOf(conn.LocalAddr())}
		u.done.Go(u.serve)
		es = append(es, u)
	}
	return es, nil
}

// count is how many datagrams the echoes got.
func (es udpEchoes) count() int64 {
	var n int64
	for _, e := range es {
		n += e.count.Load()
	}
	return n
}

// Close stops every echo.
func (es udpEchoes) Close() {
	for _, e := range es {
		e.Close()
	}
}
