package main

import "time"

// churnCPU measures the CPU a churn run costs per session: the proxy's process
// tree (with -pid) and sockbench's own, whose sessions share the machine's
// cores with the proxy and so bound the rate together with it.
type churnCPU struct {
	pid      int
	proxy0   float64 // the proxy tree's CPU seconds at the start; valid when hasProxy
	hasProxy bool
	tool0    float64
}

// startChurnCPU reads the CPU counters at the start of the measured phase.
func startChurnCPU(pid int) (*churnCPU, error) {
	c := &churnCPU{pid: pid, tool0: selfCPUSeconds()}
	var err error
	c.proxy0, c.hasProxy, err = proxyCPU(pid)
	return c, err
}

// finish sets r's CPU per session from the counters now. A proxy that exited
// meanwhile leaves its figure out.
func (c *churnCPU) finish(r *churnResult) {
	if r.Sessions == 0 {
		return
	}
	perSession := func(secs float64) float64 {
		return float64(time.Duration(secs*float64(time.Second)).Microseconds()) / float64(r.Sessions)
	}
	r.ToolCPUMicros = perSession(selfCPUSeconds() - c.tool0)
	if !c.hasProxy {
		return
	}
	if secs, err := treeCPUSeconds(c.pid); err == nil {
		v := perSession(secs - c.proxy0)
		r.ProxyCPUMicros = &v
	}
}
