package cluster

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/metrics"
)

// reserveScript reserves one session slot of a user, atomically: the user's
// counts in the hashes of the live members other than this one (each at most
// the cap: no instance can honestly hold more; one that is not "count:seq"
// counts as none, and is reported), plus this instance's new count, must not
// exceed the cap; then this instance's count is written, unless Redis already
// has a later one of it. It answers {admitted, others' sessions, bad values}.
//
// KEYS: the members list, this instance's hash. ARGV: name, user, count, seq,
// cap, live from, live to, the hashes' prefix, TTL (ms), most members read.
var reserveScript = redis.NewScript(`
local cap = tonumber(ARGV[5])
local others, bad = 0, 0
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[6], ARGV[7], 'LIMIT', 0, ARGV[10])
for _, m in ipairs(live) do
  if m ~= ARGV[1] then
    local v = redis.pcall('HGET', ARGV[8] .. m, ARGV[2])
    local c = type(v) == 'string' and tonumber(string.match(v, '^(%d+):%d+$'))
    if c then
      others = others + math.min(c, cap)
    elseif v then
      bad = bad + 1
    end
  end
end
if others + tonumber(ARGV[3]) > cap then
  return {0, others, bad}
end
local cur = redis.pcall('HGET', KEYS[2], ARGV[2])
if type(cur) == 'table' then
  redis.call('DEL', KEYS[2])
  cur, bad = false, bad + 1
end
local q = cur and tonumber(string.match(cur, '^%d+:(%d+)$'))
if not q or q < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. ':' .. ARGV[4])
end
redis.call('PEXPIRE', KEYS[2], ARGV[9])
return {1, others, bad}
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

// reserve asks Redis for a slot of user, this instance then holding c. decided
// is false when Redis was not asked (the last exchange failed) or did not
// answer in time. A session whose client left meanwhile (ctx ended) is
// refused: that says nothing of Redis.
func (s *Slots) reserve(ctx context.Context, user string, c slotCount, max int) (ok, decided bool) {
	n := s.node
	if n.isDown() || s.slow(time.Now()) {
		return false, false
	}
	rctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	live := liveRange(time.Now())
	res, err := reserveScript.Run(rctx, n.rdb, []string{n.prefix + ":members", n.slotsKey(n.name)},
		n.name, user, c.n, c.seq, max, live.Min, live.Max, n.prefix+":slots:", slotsTTL.Milliseconds(), maxPeers).Int64Slice()
	if err == nil && len(res) != 3 {
		err = errAnswer
	}
	if err != nil && ctx.Err() != nil {
		return false, true
	}
	if err != nil {
		s.mu.Lock()
		s.slowUntil = time.Now().Add(Period)
		s.mu.Unlock()
		n.log.Debug("session slot not reserved in redis: decided on this instance's part", "err", err)
		return false, false
	}
	for range res[2] {
		n.rec.ClusterBadReport(metrics.ClusterBadSlots)
	}
	return res[0] == 1, true
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

// slow reports whether reservations are decided here for now: Redis did not
// answer the last one in time.
func (s *Slots) slow(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.slowUntil)
}

func (n *Node) slotsKey(name string) string { return n.prefix + ":slots:" + name }
