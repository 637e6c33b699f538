package cluster

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/metrics"
)

// reserveScript decides a batch of reservations, in order, atomically. For
// each: the user's counts in the hashes of the live members other than this
// one (each at most the cap: no instance can honestly hold more; one that is
// not "count:seq" counts as none, and is reported), plus this instance's
// count with the reservation, must not exceed the cap; then this instance's
// count is written, unless Redis already has a later one of it. It answers 1
// (reserved) or 0 for each, then the number of bad values met.
//
// KEYS: the members list, this instance's hash. ARGV: name, live from, live
// to, the hashes' prefix, TTL (ms), most members read; then user, count, seq,
// cap for each reservation.
var reserveScript = redis.NewScript(`
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[6])
local bad, others, out = 0, {}, {}
local t = redis.call('TYPE', KEYS[2])['ok']
if t ~= 'hash' and t ~= 'none' then
  redis.call('DEL', KEYS[2])
  bad = bad + 1
end
for i = 7, #ARGV, 4 do
  local u, n, q, cap = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], tonumber(ARGV[i + 3])
  if others[u] == nil then
    local sum = 0
    for _, m in ipairs(live) do
      if m ~= ARGV[1] then
        local v = redis.pcall('HGET', ARGV[4] .. m, u)
        local c = type(v) == 'string' and tonumber(string.match(v, '^(%d+):%d+$'))
        if c then
          sum = sum + math.min(c, cap)
        elseif v then
          bad = bad + 1
        end
      end
    end
    others[u] = sum
  end
  if others[u] + n > cap then
    out[#out + 1] = 0
  else
    local cur = redis.call('HGET', KEYS[2], u)
    local cq = cur and tonumber(string.match(cur, '^%d+:(%d+)$'))
    if not cq or cq < tonumber(q) then
      redis.call('HSET', KEYS[2], u, n .. ':' .. q)
    end
    out[#out + 1] = 1
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
out[#out + 1] = bad
return out
`)

// syncScript writes this instance's counts: each "user, count, seq" unless
// Redis has a later one. A full write (ARGV[2], the last seq handed out, not
// empty) also deletes what the instance no longer has: counts of users it did
// not name, from before the write (a previous run's, say), and counts of 0
// older than ARGV[3].
//
// KEYS: this instance's hash. ARGV: TTL (ms), last seq or "", zeros before,
// then user, count, seq for each user.
var syncScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'hash' and t ~= 'none' then
  redis.call('DEL', KEYS[1])
end
local seen = {}
for i = 4, #ARGV, 3 do
  local u, q = ARGV[i], tonumber(ARGV[i + 2])
  seen[u] = true
  local cur = redis.call('HGET', KEYS[1], u)
  local cq = cur and tonumber(string.match(cur, '^%d+:(%d+)$'))
  if not cq or cq < q then
    redis.call('HSET', KEYS[1], u, ARGV[i + 1] .. ':' .. ARGV[i + 2])
  end
end
if ARGV[2] ~= '' then
  local w, z = tonumber(ARGV[2]), tonumber(ARGV[3])
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local n, q = string.match(all[i + 1], '^(%d+):(%d+)$')
    n, q = tonumber(n), tonumber(q)
    if not q or not seen[all[i]] and (n > 0 and q <= w or n == 0 and q < z) then
      redis.call('HDEL', KEYS[1], all[i])
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
`)

// send sends the pending reservations to Redis in batches, one at a time,
// until none is left.
func (s *Slots) send() {
	for s.sendBatch() {
	}
}

// sendBatch sends one batch of the pending reservations and reports whether
// more are pending; when none is, the next reservation sends again.
// Each reservation of a batch is counted here before it is sent, so that each
// asks for one more than the instance holds, the reservations before it in
// the batch included; a refused one is counted out when the answer comes. A
// batch without an answer in reserveTimeout is decided on this instance's
// part of each cap; while the last exchange failed no batch is sent.
func (s *Slots) sendBatch() (more bool) {
	n := s.node
	s.mu.Lock()
	batch := s.pending[:min(len(s.pending), maxBatch)]
	s.pending = s.pending[len(batch):]
	switch {
	case len(batch) == 0:
		s.pending, s.sending = nil, false
		s.mu.Unlock()
		return false
	case n.isDown():
		for _, r := range batch { // Redis is not asked
			s.changeLocked(r.user, +1)
			r.ok, r.result = s.decideLocked(r.user, r.max)
			close(r.done)
		}
		s.mu.Unlock()
		return s.morePending()
	}
	live := liveRange(time.Now())
	args := append(make([]any, 0, 6+4*len(batch)),
		n.name, live.Min, live.Max, n.prefix+":slots:", slotsTTL.Milliseconds(), maxPeers)
	for _, r := range batch {
		r.sent = true
		c := s.changeLocked(r.user, +1)
		args = append(args, r.user, c.n, c.seq, r.max)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), reserveTimeout)
	res, err := reserveScript.Run(ctx, n.rdb, []string{n.prefix + ":members", n.slotsKey(n.name)}, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != len(batch)+1 {
		err = errAnswer
	}
	if err == nil {
		for range res[len(batch)] {
			n.rec.ClusterBadReport(metrics.ClusterBadSlots)
		}
	} else {
		n.log.Debug("session slots not reserved in redis: decided on this instance's part", "err", err)
	}
	s.answer(batch, res, err)
	return s.morePending()
}

// morePending reports whether reservations wait for a batch, and when none
// does, lets the next one send.
func (s *Slots) morePending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		s.pending, s.sending = nil, false
		return false
	}
	return true
}

// answer settles a batch: res from Redis, or, on err, this instance's part of
// each cap. A reservation whose client left is counted out whatever the answer.
func (s *Slots) answer(batch []*reservation, res []int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for _, r := range batch {
			s.changeLocked(r.user, -1) // decided anew below, in order
		}
	}
	for i, r := range batch {
		switch {
		case r.gone:
			if err == nil {
				s.changeLocked(r.user, -1)
			}
			r.ok, r.result = false, metrics.ClusterReserveRefused
			s.dirty[r.user] = true
		case err != nil:
			s.changeLocked(r.user, +1)
			r.ok, r.result = s.decideLocked(r.user, r.max)
		case res[i] == 1:
			r.ok, r.result = true, metrics.ClusterReserved
		default:
			s.changeLocked(r.user, -1)
			r.ok, r.result = false, metrics.ClusterReserveRefused
			s.dirty[r.user] = true // Redis may hold the count with this one
		}
		close(r.done)
	}
	s.wake()
}

// flush writes the counts that changed, or all of them when a full write is
// due. What could not be written is tried again a period later.
func (s *Slots) flush(ctx context.Context) {
	s.mu.Lock()
	full := s.full
	users := make([]string, 0, len(s.dirty))
	if full {
		for u := range s.held {
			users = append(users, u)
		}
	} else {
		for u := range s.dirty {
			if _, ok := s.held[u]; ok {
				users = append(users, u)
			}
		}
	}
	now := time.Now()
	args := make([]any, 3, 3+3*len(users))
	args[0], args[1], args[2] = slotsTTL.Milliseconds(), "", now.Add(-zeroKeep).UnixMicro()
	if full {
		// Every seq handed out from now on is above this one.
		args[1] = max(s.seq, now.UnixMicro()-1)
	}
	written := make([]slotCount, len(users))
	for i, u := range users {
		written[i] = s.held[u]
		args = append(args, u, written[i].n, written[i].seq)
	}
	s.dirty, s.full = map[string]bool{}, false
	s.mu.Unlock()
	if len(users) == 0 && !full {
		return
	}
	n := s.node
	ctx, cancel := context.WithTimeout(ctx, Period)
	err := syncScript.Run(ctx, n.rdb, []string{n.slotsKey(n.name)}, args...).Err()
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for _, u := range users {
			s.dirty[u] = true
		}
		s.full = s.full || full
		if !s.flushFailed {
			n.log.Debug("session slots not written to redis: trying again every period", "err", err)
		}
		s.flushFailed = true
		time.AfterFunc(Period, s.wake)
		return
	}
	s.flushFailed = false
	for i, u := range users {
		if c := s.held[u]; c.n == 0 && c.seq == written[i].seq {
			delete(s.held, u) // Redis has the 0
		}
	}
}

func (n *Node) slotsKey(name string) string { return n.prefix + ":slots:" + name }
