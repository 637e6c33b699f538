package cluster

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
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
const (
	dayTTL   = 2 * 24 * 3600
	monthTTL = 35 * 24 * 3600
)

var usageScript = redis.NewScript(`
local out = {}
local function add(key, field, known, added)
  local cur = tonumber(redis.call('HGET', key, field) or '0')
  local total = math.max(cur, tonumber(known)) + tonumber(added)
  redis.call('HSET', key, field, total)
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
return out
`)

// addUsage queues the usage script in p; the result is read with usageTotals.
func (n *Node) addUsage(ctx context.Context, p redis.Pipeliner, u *Usage) *redis.Cmd {
	args := make([]any, 0, 7*len(u.Users))
	for _, uu := range u.Users {
		args = append(args, uu.User, uu.Added[0], uu.Added[1], uu.DayKnown[0], uu.DayKnown[1],
			uu.MonthKnown[0], uu.MonthKnown[1])
	}
	keys := []string{n.prefix + ":usage:day:" + u.Day, n.prefix + ":usage:month:" + u.Month}
	return usageScript.Eval(ctx, p, keys, args...) // EVAL, not EVALSHA: a pipeline cannot retry a NOSCRIPT
}

// usageTotals reads the script's answer: four totals per user, in order.
func usageTotals(u *Usage, cmd *redis.Cmd) (*UsageTotals, error) {
	vals, err := cmd.Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(vals) != 4*len(u.Users) {
		return nil, fmt.Errorf("usage script answered %d totals for %d users", len(vals), len(u.Users))
	}
	t := &UsageTotals{Day: u.Day, Month: u.Month, Users: make(map[string]UserTotals, len(u.Users))}
	for i, uu := range u.Users {
		v := vals[4*i:]
		t.Users[uu.User] = UserTotals{Day: [2]int64{v[0], v[1]}, Month: [2]int64{v[2], v[3]}}
	}
	return t, nil
}
