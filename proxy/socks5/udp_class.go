package socks5

import "github.com/sockshaper/sockshaper/shaping"

// An association's app class. sessions_active and sessions_total count a session
// under one class, but an association learns its class from its datagrams, after
// it opened, and may talk to several classes. So it opens as the unclassified
// class; the first datagram the client sends to a classified destination (a
// Teams relay on UDP 3478, say) moves it to that class, so that the gauge shows
// the call while it runs; and at close its class is the one that moved the most
// bytes, both directions together (a tie keeps the class it shows). That class
// names it in sessions_total, the duration histogram and the accounting line.

// noteClass moves the session to app when app is the first class other than the
// unclassified one that the client sends to.
func (a *association) noteClass(app string) {
	if app != shaping.Other && a.sess.App() == shaping.Other {
		a.sess.Reclassify(app)
	}
}

// settleClass gives the session, at close, the class that moved the most bytes;
// among other classes tied for the most, the first by name.
func (a *association) settleClass() {
	current := a.sess.App()
	best, most := current, a.bytesByApp[current]
	for app, n := range a.bytesByApp {
		if n > most || n == most && best != current && app < best {
			best, most = app, n
		}
	}
	// The session goroutine reads the class only after the relay goroutine has
	// ended.
	a.sess.Reclassify(best)
}
