package proxy

import (
	"container/list"
	"net/netip"

	"github.com/sockshaper/sockshaper/metrics"
)

// A slot's stage decides the order of eviction: an HTTP keep-alive connection
// waiting for its next request goes first (nothing is under way on it, and a
// client reopens an idle connection it lost without a word to its user), then
// connections that have sent nothing, then those that have started talking. A
// real client sends its greeting as soon as it is connected, so a flood of
// silent connections mostly replaces its own, and a flood of keep-alive
// connections that never log in is the first thing to go.
const (
	stageIdle    = iota // an HTTP keep-alive connection between two requests
	stageSilent         // accepted, no byte received yet
	stageTalking        // sent at least one byte of its handshake or request
	stages
)

// stageName is st's value of sockshaper_handshakes_active{stage}.
func stageName(st int) string {
	switch st {
	case stageIdle:
		return metrics.StageIdle
	case stageSilent:
		return metrics.StageSilent
	}
	return metrics.StageTalking
}

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

// heaviest finds, in O(1), a client with the most slots in one stage: each count
// has a list of the clients with that count (lists, not maps, so that finding one
// never scans a large, mostly emptied table).
type heaviest struct {
	at      map[netip.Prefix]*list.Element // a client's place in byCount; Value is *heavyCount
	byCount []*list.List                   // byCount[n]: the clients with n slots
	max     int
}

type heavyCount struct {
	key netip.Prefix
	n   int
}

// add changes key's count by d (+1 or -1).
func (x *heaviest) add(key netip.Prefix, d int) {
	if x.at == nil {
		x.at = map[netip.Prefix]*list.Element{}
	}
	c := &heavyCount{key: key}
	if e := x.at[key]; e != nil {
		c = e.Value.(*heavyCount)
		x.byCount[c.n].Remove(e)
	}
	c.n += d
	if c.n <= 0 {
		delete(x.at, key)
	} else {
		for len(x.byCount) <= c.n {
			x.byCount = append(x.byCount, list.New())
		}
		x.at[key] = x.byCount[c.n].PushBack(c)
		x.max = max(x.max, c.n)
	}
	for x.max > 0 && x.byCount[x.max].Len() == 0 {
		x.max--
	}
}

// top returns a client with the most slots, or false when there is none.
func (x *heaviest) top() (netip.Prefix, bool) {
	if x.max == 0 {
		return netip.Prefix{}, false
	}
	return x.byCount[x.max].Front().Value.(*heavyCount).key, true
}
