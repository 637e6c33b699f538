package socks5

import (
	"context"
	"net/netip"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
)

// Bounds of an association's state, so a client spraying datagrams at many
// destinations costs the proxy fixed memory.
const (
	// maxUDPPeers is how many destinations an association remembers for replies:
	// far more than a call or a game uses at once, and under 100 KiB when full.
	// When full, an arbitrary one is forgotten; its later answers are dropped, as
	// a NAT whose mapping expired drops them.
	maxUDPPeers = 1024
	// maxUDPNames is how many resolved names an association keeps.
	maxUDPNames = 64
	// udpNameTTL is how long a resolved name is used: a lookup per datagram would
	// stall the relay, and a minute still follows a DNS change during a long call.
	udpNameTTL = time.Minute
	// udpNameFailTTL is how long a failed or denied name stays failed, so a client
	// retrying it does not cost a lookup per datagram.
	udpNameFailTTL = 10 * time.Second
)

// resolvedName is a cached resolution; addr is invalid when it failed or every
// address was denied.
type resolvedName struct {
	name    string
	addr    netip.Addr
	expires time.Time
}

// run reads the relay socket until it is closed, a batch of queued datagrams at
// a time (udp_batch.go), and relays each batch. A datagram is read behind room
// for a reply header, so a peer's answer goes to the client without a copy.
func (a *association) run() error {
	return a.reader.run()
}

// handle sorts datagram i of b by its source: the client, a peer the client
// sent to, or anyone else, whose datagram is the inbound path a supernode needs
// and is dropped and counted.
func (a *association) handle(b *udpBatch, i int) {
	from, n := b.from[i], b.size[i]
	if from == a.client {
		a.fromClient(b, from, b.bufs[i][maxReplyHeader:maxReplyHeader+n])
		return
	}
	if app, ok := a.peers[from]; ok {
		a.fromPeer(b, i, app)
		return
	}
	if a.lockClient(from) {
		a.fromClient(b, from, b.bufs[i][maxReplyHeader:maxReplyHeader+n])
		return
	}
	a.drops.unsolicited++
	a.core.Recorder().InboundRefused(metrics.InboundUDPUnsolicited)
	a.dropped(from, "unsolicited", nil)
}

// lockClient reports whether from may be the client's UDP source and, if so,
// makes it the only one. It must have the control connection's address (a
// client's UDP and TCP leave from the same host) and the port the request named;
// a request naming port 0 leaves the port to the first datagram (RFC 1928: the
// client may not know it yet).
func (a *association) lockClient(from netip.AddrPort) bool {
	if a.client.IsValid() || from.Addr() != a.clientIP {
		return false
	}
	if a.wantPort != 0 && from.Port() != a.wantPort {
		return false
	}
	a.client = from
	return true
}

// fromClient queues one client datagram to its destination, after the header,
// policy and upload bucket checks.
func (a *association) fromClient(b *udpBatch, from netip.AddrPort, msg []byte) {
	d, err := parseDatagram(msg)
	switch {
	case err != nil:
		a.drops.header++
		a.dropped(from, "bad_header", err)
		return
	case d.frag != 0:
		// Reassembly is optional in RFC 1928 and no client in use fragments.
		a.drops.header++
		a.dropped(from, "fragment", nil)
		return
	}
	dst, name, ok := a.destination(b, d)
	if !ok {
		return
	}
	app := a.classify(name, dst)
	if !allow(a.lease(app), metrics.DirectionUpload, len(d.payload)) {
		a.drops.shaped++
		a.dropped(from, "shaped", nil)
		return
	}
	a.remember(dst, app)
	toDest, _ := a.pol.Classifier.Marks(app)
	b.queue(udpSend{b: d.payload, dst: dst, mark: toDest, app: app, payload: len(d.payload), up: true})
}

// fromPeer queues datagram i of b, from a peer the client sent to, back to the
// client, with the peer's address in the header written in front of the
// payload.
func (a *association) fromPeer(b *udpBatch, i int, app string) {
	from, n := b.from[i], b.size[i]
	if !allow(a.lease(app), metrics.DirectionDownload, n) {
		a.drops.shaped++
		a.dropped(from, "shaped", nil)
		return
	}
	// The header is appended in place, into the room left in front of the payload.
	buf := &b.bufs[i]
	start := maxReplyHeader - replyHeaderLen(from)
	appendReplyHeader(buf[start:start], from)
	_, toClient := a.pol.Classifier.Marks(app)
	b.queue(udpSend{b: buf[start : maxReplyHeader+n], dst: a.client, mark: toClient, app: app, payload: n})
}

// destination returns where a client datagram goes: its address, or its name's
// first allowed address of the relay socket's family (the socket is bound to one
// address and cannot send to the other family), and the name for classification.
// A denied or unresolvable destination is dropped, and so is one of the proxy's
// own listeners: the name's address is checked when it is resolved, the port
// with every datagram.
func (a *association) destination(b *udpBatch, d datagram) (netip.AddrPort, string, bool) {
	var dst netip.AddrPort
	var name string
	if d.host == nil {
		dst = netip.AddrPortFrom(d.addr.Unmap(), d.port)
	} else {
		r := a.resolve(b, d.host)
		if !r.addr.IsValid() {
			a.denied(dst, r.name)
			return dst, "", false
		}
		dst, name = netip.AddrPortFrom(r.addr, d.port), r.name
	}
	if d.port == 0 {
		a.drops.header++
		a.dropped(dst, "port_zero", nil)
		return dst, "", false
	}
	if a.core.DeniedDestination(a.pol, dst) {
		a.denied(dst, name)
		return dst, "", false
	}
	return dst, name, true
}

// denied counts a datagram the policy refused, or whose name did not resolve to
// an allowed address. The first is logged at info level like a refused CONNECT;
// the rest at debug, as a flood would drown the log.
func (a *association) denied(dst netip.AddrPort, name string) {
	a.drops.policy++
	if !a.deniedLogged {
		a.deniedLogged = true
		if name == "" {
			name = dst.String()
		}
		a.sess.Log().Info("udp destination denied", "destination", name, "rule", a.core.DenyingRule(a.pol, dst))
		return
	}
	a.dropped(dst, "denied", nil)
}

// resolve returns host's cached resolution, looking it up when it is missing or
// expired. Looking up a name copies it; finding it does not. A lookup may take
// up to the dial timeout, so the datagrams b queued before it go first.
func (a *association) resolve(b *udpBatch, host []byte) resolvedName {
	now := time.Now()
	if r, ok := a.names[string(host)]; ok && now.Before(r.expires) {
		return r
	}
	a.flush(b)
	r := resolvedName{name: string(host), expires: now.Add(udpNameFailTTL)}
	ctx, cancel := context.WithTimeout(a.sess.Context(), a.pol.Config.Timeouts.Dial)
	addrs, err := a.core.ResolveAllowed(ctx, a.pol, r.name, netip.Addr{}, 0)
	cancel()
	for _, addr := range addrs {
		if addr.Is4() == a.local.Addr().Is4() {
			r.addr, r.expires = addr, now.Add(udpNameTTL)
			break
		}
	}
	if err != nil {
		a.dropped(netip.AddrPort{}, "resolve_failed", err)
	}
	if len(a.names) >= maxUDPNames {
		forgetOne(a.names)
	}
	a.names[r.name] = r
	return r
}

// classify returns the app class of a destination.
func (a *association) classify(name string, dst netip.AddrPort) string {
	return a.pol.Classifier.Classify(shaping.Target{Transport: "udp", Host: name, Addr: dst.Addr(), Port: dst.Port()})
}

// remember admits dst's answers from now on, for the class app.
func (a *association) remember(dst netip.AddrPort, app string) {
	if _, ok := a.peers[dst]; ok {
		return
	}
	if len(a.peers) >= maxUDPPeers {
		forgetOne(a.peers)
	}
	a.peers[dst] = app
}

// forgetOne deletes an arbitrary entry: Go starts each map iteration at a random
// place.
func forgetOne[K comparable, V any](m map[K]V) {
	for k := range m {
		delete(m, k)
		return
	}
}

// lease returns the session's lease for app, acquiring it on first use. An
// association holds one lease per class it has sent to, so each datagram passes
// through its own class's buckets.
func (a *association) lease(app string) *shaping.Lease {
	l, ok := a.leases[app]
	if !ok {
		l = a.core.Lease(a.sess.Who(), app)
		a.leases[app] = l
	}
	return l
}

// allow reports whether n bytes in direction fit the buckets now. Unlike a TCP
// relay, it asks even an unshaped lease: the check costs an atomic load per
// bucket, and a reload that sets a limit then applies to live associations. A
// datagram that does not fit is dropped, never queued: late media is useless, and
// a queue would hold the relay goroutine.
func allow(l *shaping.Lease, direction string, n int) bool {
	if l == nil {
		return true
	}
	if direction == metrics.DirectionUpload {
		return l.Upload().Allow(n)
	}
	return l.Download().Allow(n)
}
