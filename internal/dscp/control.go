package dscp

// ControlMessages returns the control messages that mark a datagram with m (IP_TOS
// and IPV6_TCLASS), for a caller that sends with its own sendmsg(2) or
// sendmmsg(2): a UDP relay sending a batch of datagrams of several classes in
// one system call. It is nil for the zero Mark, and on systems where
// [Mark.WriteTo] sends unmarked. The caller must not modify it.
func (m Mark) ControlMessages() []byte { return m.oob }
