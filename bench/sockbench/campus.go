package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// campus is one run of the campus scenario: the mix, its targets, its flows and
// the events of the current window.
type campus struct {
	o       *options
	log     *slog.Logger
	mix     *campusMix
	limits  campusLimits
	targets *campusTargets
	flows   []*flow
	events  *campusEvents
	// expected are the water-filled per-user rates the report compares with.
	expected expectedRates
	start    time.Time // the first window's start
}

func (cs *campus) dialer(user int) dialer {
	return dialer{proxy: cs.o.proxy, timeout: cs.o.timeout, from: cs.mix.addr[user]}
}

func (cs *campus) cred(user int) credential {
	return credential{user: cs.mix.users[user], password: cs.o.campus.password}
}

// runCampus writes the setup with -setup; otherwise it runs the campus against
// the proxy of -config: it opens the long-lived flows, starts browsing and the
// hostile background, waits -warmup, then reports every -window for -duration.
func runCampus(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	if o.campus.setup != "" {
		return campusSetup(&o.campus)
	}
	limits, names, err := loadCampusConfig(o.campus.config)
	if err != nil {
		return nil, err
	}
	mix, err := newMix(names, &o.campus)
	if err != nil {
		return nil, err
	}
	cs := &campus{o: o, log: log, mix: mix, limits: limits, flows: newFlows(mix), events: newCampusEvents()}
	if err := cs.checkDescriptors(); err != nil {
		return nil, err
	}
	if cs.targets, err = startCampusTargets(log); err != nil {
		return nil, err
	}
	defer cs.targets.Close()
	return cs.run(ctx)
}

// checkDescriptors raises RLIMIT_NOFILE and checks it covers the run: two
// descriptors per flow (client and target side; a UDP call's control connection
// and socket), one per slowloris and keep-alive connection and guesser, two per user for a
// short session in flight.
func (cs *campus) checkDescriptors() error {
	c := &cs.o.campus
	need := uint64(2*len(cs.flows) + c.slowloris + c.keepPer*c.keepAddrs + c.guessers + 2*len(cs.mix.users) + 256)
	got, err := raiseNofile()
	if err != nil || got < need {
		return fmt.Errorf("RLIMIT_NOFILE is %d, %d descriptors are needed (%v); raise the hard limit (ulimit -Hn)", got, need, err)
	}
	return nil
}

// run starts every population, measures the windows and stops everything.
func (cs *campus) run(ctx context.Context) (result, error) {
	c := &cs.o.campus
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	for i := range c.slowloris {
		wg.Go(func() { cs.slowloris(runCtx, i) })
	}
	for i := range c.keepPer * c.keepAddrs {
		wg.Go(func() { cs.keepAlive(runCtx, i) })
	}
	for i := range c.guessers {
		wg.Go(func() { cs.guess(runCtx, i) })
	}
	for u := range cs.mix.users {
		wg.Go(func() { cs.browse(runCtx, u) })
	}
	opened := cs.openFlows(runCtx, &wg)
	cs.log.Info("flows open", "flows", len(cs.flows), "seconds", opened.Seconds())
	if !sleepCtx(ctx, c.warmup) {
		return nil, ctx.Err()
	}
	r := cs.newResult(opened)
	if err := cs.measure(ctx, r); err != nil {
		return nil, err
	}
	if r.Opened == 0 {
		return nil, errors.New("no long-lived flow opened; see the errors in the report")
	}
	return r, ctx.Err()
}

// openFlows starts every flow with at most dialParallel handshakes at once and
// returns how long it took until each had opened or failed.
func (cs *campus) openFlows(ctx context.Context, wg *sync.WaitGroup) time.Duration {
	start := time.Now()
	var opening sync.WaitGroup
	slot := openSlot{slots: make(chan struct{}, dialParallel), done: opening.Done}
	for _, f := range cs.flows {
		opening.Add(1)
		wg.Go(func() { cs.runFlow(ctx, f, slot) })
	}
	opening.Wait()
	return time.Since(start)
}

// procSample is the CPU time of the proxy and of this process, and the proxy's
// memory, at one moment.
type procSample struct {
	at       time.Time
	proxyCPU float64 // seconds; 0 without -pid
	toolCPU  float64 // seconds
	mem      *memory // nil without -pid
}

// sampleProcs reads the proxy's (when -pid is set) and this process's CPU time
// and the proxy's memory.
func (cs *campus) sampleProcs() (procSample, error) {
	s := procSample{at: time.Now()}
	var err error
	if s.toolCPU, err = treeCPUSeconds(os.Getpid()); err != nil {
		return s, err
	}
	if cs.o.pid <= 0 {
		return s, nil
	}
	if s.proxyCPU, err = treeCPUSeconds(cs.o.pid); err != nil {
		return s, fmt.Errorf("-pid: %w", err)
	}
	s.mem, err = readMemory(cs.o.pid)
	return s, err
}
