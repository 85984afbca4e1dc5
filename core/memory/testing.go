package memory

import "time"

// Helpers for a virtual-time tester (core/tester): it moves time only when
// nothing can happen without it, so it needs to know what can happen now
// and when the next thing becomes due. They read the provider's state under
// its locks and count as no call in Stats.

// Ready counts the control-queue messages and the work items that a fetch
// would hand out now: visible, neither locked nor delayed.
func (p *Provider) Ready() (messages, workItems int) {
	now := p.now()
	count := func(q *queue) int {
		n := 0
		for e := range q.live() {
			if !e.visibleAt.After(now) {
				n++
			}
		}
		return n
	}
	p.workMu.Lock()
	workItems = count(p.work)
	p.workMu.Unlock()
	for _, part := range p.parts {
		part.mu.Lock()
		messages += count(part.queue)
		part.mu.Unlock()
	}
	return messages, workItems
}

// NextTimerAt is the earliest fire time, later than the provider's now, of
// the pending durable timers of all instances; false when there is none.
// Timers already due are left out: their owner has fired them, and the
// episode that consumes them removes their rows.
func (p *Provider) NextTimerAt() (time.Time, bool) {
	now := p.now()
	var next time.Time
	for _, part := range p.parts {
		part.mu.Lock()
		for _, inst := range part.instances {
			for _, t := range inst.timers {
				if t.FireAt.After(now) && (next.IsZero() || t.FireAt.Before(next)) {
					next = t.FireAt
				}
			}
		}
		part.mu.Unlock()
	}
	return next, !next.IsZero()
}
