package auth

import (
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// pool runs checks on a bounded number of goroutines from a bounded queue that is
// fair across client addresses, so that guessing from a few addresses cannot take
// the CPU from logins from others.
//
// The order is that of fq_codel's scheduler (RFC 8290, section 4.2) with a quantum
// of one check: an address that had nothing queued goes to the "new" list, which
// is served before the "old" list; an address served moves to the end of the old
// list, and leaves it only when its turn comes with nothing queued. A real user's
// first login, from an address that is not guessing, is therefore next in line
// however many addresses keep the queue full. Among new addresses, the one with
// the fewest checks queued goes first. When the queue is full, a check is
// turned away from the address with the most queued (the newcomer, if that is it),
// so a full queue never locks a new address out.
//
// Worker goroutines start when checks are queued and end when the queue is empty,
// so a pool with nothing to do holds no goroutine.
type pool struct {
	workers, perAddr int
	// total bounds the queue when it is fixed (> 0). Otherwise the bound is what
	// the workers get through in waitBudget at the checks' average time, at
	// least minTotal: a thundering herd of logins at 8 am (2,000 users in 3 s)
	// waits its turn instead of being turned away, and no check is queued that
	// would only finish after its client's handshake deadline.
	total, minTotal int
	waitBudget      time.Duration
	avgCheck        time.Duration // moving average of a check's run time

	mu       sync.Mutex
	closed   bool
	running  int
	queued   int
	wg       sync.WaitGroup // running workers
	flows    map[netip.Prefix]*flow
	newFlows []*flow
	oldFlows []*flow
}

// flow is one address's queue.
type flow struct {
	key  netip.Prefix
	jobs []*job
	list int // listNone, listNew, listOld
}

const (
	listNone = iota
	listNew
	listOld
)

// job is one queued check. run is called on a worker; dropped instead, once, if
// the job is turned away from the queue to make room for another address's, or
// the pool closes.
type job struct {
	run     func()
	dropped func()
}

func newPool(workers, perAddr, total, minTotal int, waitBudget time.Duration) *pool {
	return &pool{workers: workers, perAddr: perAddr, total: total, minTotal: minTotal,
		waitBudget: waitBudget, flows: map[netip.Prefix]*flow{}}
}

// limit returns the queue's bound; the caller holds mu.
func (p *pool) limit() int {
	if p.total > 0 {
		return p.total
	}
	if p.avgCheck <= 0 {
		return p.minTotal
	}
	return max(p.minTotal, int(int64(p.workers)*int64(p.waitBudget)/int64(p.avgCheck)))
}

// setWorkers changes the number of workers, and so the least the queue holds.
// Raised, it starts workers for the checks already queued; lowered, the extra
// workers end after their current check.
func (p *pool) setWorkers(n int) {
	p.mu.Lock()
	p.workers, p.minTotal = n, queuePerWorker*n
	start := max(0, min(p.queued, n-p.running))
	p.running += start
	p.wg.Add(start)
	p.mu.Unlock()
	for range start {
		go p.work()
	}
}

func (p *pool) workerCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.workers
}

// setWaitBudget changes how long a queued check may expect to wait.
func (p *pool) setWaitBudget(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waitBudget = d
}

// budget returns how long a queued check may expect to wait.
func (p *pool) budget() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitBudget
}

// observe adds a check's run time to the moving average (weight 1/16); the
// caller holds mu.
func (p *pool) observe(took time.Duration) {
	if p.avgCheck == 0 {
		p.avgCheck = took
		return
	}
	p.avgCheck += (took - p.avgCheck) / 16
}

// submit queues run for key, or reports false when the pool is closed, key
// already has perAddr checks queued, or the queue is full and key has as many
// queued as any other.
func (p *pool) submit(key netip.Prefix, run, dropped func()) bool {
	p.mu.Lock()
	f := p.flows[key]
	mine := 0
	if f != nil {
		mine = len(f.jobs)
	}
	if p.closed || mine >= p.perAddr {
		p.mu.Unlock()
		return false
	}
	var evicted *job
	if p.queued >= p.limit() {
		if evicted = p.evictLongerThan(mine); evicted == nil {
			p.mu.Unlock()
			return false
		}
	}
	if f == nil {
		f = &flow{key: key}
		p.flows[key] = f
	}
	f.jobs = append(f.jobs, &job{run: run, dropped: dropped})
	p.queued++
	if f.list == listNone {
		f.list = listNew
		p.newFlows = append(p.newFlows, f)
	}
	start := p.running < p.workers
	if start {
		p.running++
		p.wg.Add(1)
	}
	p.mu.Unlock()
	if evicted != nil {
		evicted.dropped()
	}
	if start {
		go p.work()
	}
	return true
}

// evictLongerThan removes the newest job of the longest queue if that queue holds
// more than n jobs.
func (p *pool) evictLongerThan(n int) *job {
	var longest *flow
	for _, f := range p.flows {
		if len(f.jobs) > n && (longest == nil || len(f.jobs) > len(longest.jobs)) {
			longest = f
		}
	}
	if longest == nil {
		return nil
	}
	last := len(longest.jobs) - 1
	j := longest.jobs[last]
	longest.jobs[last] = nil
	longest.jobs = longest.jobs[:last]
	p.queued--
	return j
}

// close refuses new jobs, turns the queued ones away (calling their dropped) and
// waits for the running ones to end.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var gone []*job
	for _, f := range p.flows {
		gone = append(gone, f.jobs...)
		f.jobs = nil
	}
	p.queued = 0
	p.mu.Unlock()
	for _, j := range gone {
		j.dropped()
	}
	p.wg.Wait()
}

// work runs jobs until the queue is empty. A job must not panic: it would take
// the process down (the Authenticator's recovers).
func (p *pool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		var j *job
		if p.running <= p.workers {
			j = p.next()
		}
		if j == nil {
			p.running--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		start := time.Now()
		j.run()
		p.mu.Lock()
		p.observe(time.Since(start))
		p.mu.Unlock()
		// A check holds its CPU for milliseconds without blocking: let the
		// goroutines that became runnable meanwhile (sessions reading logins,
		// relays) run before the next one, or they wait for preemption.
		runtime.Gosched()
	}
}

// next takes the next job in fq_codel's order; the caller holds mu.
func (p *pool) next() *job {
	for {
		var f *flow
		switch {
		case len(p.newFlows) > 0:
			f = p.takeNewFlow()
		case len(p.oldFlows) > 0:
			f, p.oldFlows = p.oldFlows[0], p.oldFlows[1:]
			if len(f.jobs) == 0 {
				f.list = listNone
				delete(p.flows, f.key)
				continue
			}
		default:
			return nil
		}
		// Served or not (a new flow whose jobs were cancelled), a flow goes to
		// the old list, so an address cannot jump the line by emptying its queue.
		f.list = listOld
		p.oldFlows = append(p.oldFlows, f)
		if len(f.jobs) == 0 {
			continue
		}
		j := f.jobs[0]
		f.jobs[0] = nil
		f.jobs = f.jobs[1:]
		p.queued--
		return j
	}
}

// takeNewFlow takes the new flow with the fewest jobs queued, the first of those
// in arrival order. When many addresses start guessing at once, they all arrive as
// new flows with their queues full, and a real user's single login goes first
// instead of waiting for every one of them to be served once.
func (p *pool) takeNewFlow() *flow {
	best := 0
	for i, f := range p.newFlows {
		if len(f.jobs) < len(p.newFlows[best].jobs) {
			best = i
		}
	}
	f := p.newFlows[best]
	p.newFlows = append(p.newFlows[:best], p.newFlows[best+1:]...)
	return f
}

// stats returns the number of jobs queued and running.
func (p *pool) stats() (queued, running int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queued, p.running
}
