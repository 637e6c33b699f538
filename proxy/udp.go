package proxy

import socks5 "github.com/armon/go-socks5"

// associate serves UDP ASSOCIATE.
func (sess *session) associate(req *socks5.Request) {
	if !sess.pol.cfg.Access.UDPAssociate {
		sess.refuse(replyNotAllowed, resultCommandRefused)
		return
	}
	sess.refuse(replyCommandNotSupported, resultCommandRefused)
}
