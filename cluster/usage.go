package cluster

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/metrics"
)

// Usage is what an instance counted of its users' bytes since its last report,
// for quotas across instances (package usage makes it).
type Usage struct {
	Day   string // the day the counts belong to, yyyy-mm-dd in the quotas' time zone
	Month string // and the month, yyyy-mm
	Users []UserUsage
}

// UserUsage is one user's bytes, by direction (upload, download).
type UserUsage struct {
	User string
	// Added is what the instance counted since its last report.
	Added [2]int64
	// DayKnown and MonthKnown are the totals the instance knew before Added:
	// Redis keeps the larger of them and its own, so that totals it lost (a
	// restart without persistence) come back from the instances.
	DayKnown, MonthKnown [2]int64
}

// UsageTotals are the cluster's totals after an exchange, for the users the
// report named.
type UsageTotals struct {
	Day, Month string
	Users      map[string]UserTotals
}

// UserTotals is one user's bytes today and this month, by direction.
type UserTotals struct{ Day, Month [2]int64 }

// Usage is kept in one hash per day and one per month (fields "user|up" and
// "user|down"), a little longer than the period, and updated by one script per
// exchange, whatever the number of users: for each field, max(what Redis has,
// what the instance knew) plus what it added.
//
// What Redis has is not trusted: a total that is not a whole number of bytes
// between 0 and maxTotal (text, a fraction, a negative, 1e999) is replaced by
// what the instance knew, and a key of another type than a hash is deleted;
// the script answers how many it replaced, after the totals. It never fails
// for a value found in Redis, so one bad field cannot stop the totals of every
// exchange that carries its user.
const (
	dayTTL   = 2 * 24 * 3600
	monthTTL = 35 * 24 * 3600
	// maxTotal is 2^53 bytes (8 PiB): the largest count a Lua number holds
	// exactly, and more than a user moves in a month at 10 Gbit/s.
	maxTotal = 1 << 53
)

var usageScript = redis.NewScript(`
local out, bad = {}, 0
local function count(v)
  local n = tonumber(v)
  if n == nil or n ~= n or n < 0 or n > ` + strconv.Itoa(maxTotal) + ` or n ~= math.floor(n) then
    return nil
  end
  return n
end
for _, key in ipairs(KEYS) do
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'hash' and t ~= 'none' then
    redis.call('DEL', key)
    bad = bad + 1
  end
end
local function add(key, field, known, added)
  local cur = redis.call('HGET', key, field)
  if cur then
    cur = count(cur)
    if cur == nil then
      bad = bad + 1
    end
  end
  local total = math.min(math.max(cur or 0, tonumber(known)) + tonumber(added), ` + strconv.Itoa(maxTotal) + `)
  redis.call('HSET', key, field, string.format('%.0f', total))
  out[#out + 1] = total
end
for i = 1, #ARGV, 7 do
  local u = ARGV[i]
  add(KEYS[1], u .. '|up', ARGV[i + 3], ARGV[i + 1])
  add(KEYS[1], u .. '|down', ARGV[i + 4], ARGV[i + 2])
  add(KEYS[2], u .. '|up', ARGV[i + 5], ARGV[i + 1])
  add(KEYS[2], u .. '|down', ARGV[i + 6], ARGV[i + 2])
end
redis.call('EXPIRE', KEYS[1], ` + strconv.Itoa(dayTTL) + `)
redis.call('EXPIRE', KEYS[2], ` + strconv.Itoa(monthTTL) + `)
out[#out + 1] = bad
return out
`)

// addUsage queues the usage script in p; the result is read with usageTotals.
// The instance's own counts are at least 0.
func (n *Node) addUsage(ctx context.Context, p redis.Pipeliner, u *Usage) *redis.Cmd {
	args := make([]any, 0, 7*len(u.Users))
	for _, uu := range u.Users {
		args = append(args, uu.User, max(uu.Added[0], 0), max(uu.Added[1], 0), max(uu.DayKnown[0], 0),
			max(uu.DayKnown[1], 0), max(uu.MonthKnown[0], 0), max(uu.MonthKnown[1], 0))
	}
	keys := []string{n.prefix + ":usage:day:" + u.Day, n.prefix + ":usage:month:" + u.Month}
	return usageScript.Eval(ctx, p, keys, args...) // EVAL, not EVALSHA: a pipeline cannot retry a NOSCRIPT
}

// usageTotals reads the script's answer: four totals per user, in order, and
// the count of values it replaced. A failed script leaves the totals as the
// instance counts them (nil), logged; it is not an outage.
func (n *Node) usageTotals(u *Usage, cmd *redis.Cmd) *UsageTotals {
	vals, err := cmd.Int64Slice()
	if err == nil && len(vals) != 4*len(u.Users)+1 {
		err = fmt.Errorf("usage script answered %d values for %d users", len(vals), len(u.Users))
	}
	n.mu.Lock()
	if err != nil && !n.usageFailed {
		n.log.Warn("usage totals not updated in redis: quotas count this instance's bytes until they are", "err", err)
	}
	n.usageFailed = err != nil
	n.mu.Unlock()
	if err != nil {
		return nil
	}
	for range vals[len(vals)-1] {
		n.rec.ClusterBadReport(metrics.ClusterBadUsage)
	}
	t := &UsageTotals{Day: u.Day, Month: u.Month, Users: make(map[string]UserTotals, len(u.Users))}
	for i, uu := range u.Users {
		v := vals[4*i:]
		t.Users[uu.User] = UserTotals{Day: [2]int64{v[0], v[1]}, Month: [2]int64{v[2], v[3]}}
	}
	return t
}
