package proxy

import (
	"container/list"
	"net/netip"
)

// A handshake's stage decides the order of eviction: connections that have sent
// nothing go before those that have started talking. A real client sends its
// greeting as soon as it is connected, so a flood of silent connections mostly
// replaces its own.
const (
	stageSilent  = iota // accepted, no byte received yet
	stageTalking        // sent at least one byte of its handshake
	stages
)

// handshakeQueue holds one client's slots by stage, oldest first in each.
type handshakeQueue struct {
	byStage [stages]list.List
	n       int
}

// oldest returns the slot to evict from this client: the oldest of the earliest
// stage.
func (q *handshakeQueue) oldest() *handshakeSlot {
	for i := range q.byStage {
		if e := q.byStage[i].Front(); e != nil {
			return e.Value.(*handshakeSlot)
		}
	}
	return nil
}

func (q *handshakeQueue) push(s *handshakeSlot) {
	q.n++
	s.elem = q.byStage[s.stage].PushBack(s)
}

func (q *handshakeQueue) remove(s *handshakeSlot) {
	q.n--
	q.byStage[s.stage].Remove(s.elem)
}

// heaviest finds, in O(1), a client with the most slots in one stage.
type heaviest struct {
	count   map[netip.Prefix]int
	byCount []map[netip.Prefix]struct{} // byCount[n]: the clients with n slots
	max     int
}

// add changes key's count by d (+1 or -1).
func (x *heaviest) add(key netip.Prefix, d int) {
	if x.count == nil {
		x.count = map[netip.Prefix]int{}
	}
	n := x.count[key]
	if n > 0 {
		delete(x.byCount[n], key)
	}
	n += d
	if n <= 0 {
		delete(x.count, key)
	} else {
		x.count[key] = n
		for len(x.byCount) <= n {
			x.byCount = append(x.byCount, map[netip.Prefix]struct{}{})
		}
		x.byCount[n][key] = struct{}{}
		x.max = max(x.max, n)
	}
	for x.max > 0 && len(x.byCount[x.max]) == 0 {
		x.max--
	}
}

// top returns a client with the most slots, or false when there is none.
func (x *heaviest) top() (netip.Prefix, bool) {
	if x.max == 0 {
		return netip.Prefix{}, false
	}
	for k := range x.byCount[x.max] {
		return k, true
	}
	return netip.Prefix{}, false
}
