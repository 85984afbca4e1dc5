package tester

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/core"
)

var _ core.Clock = (*VirtualClock)(nil)

// VirtualClock is a core.Clock whose time moves only when told to: by
// Advance and AdvanceTo, or by the tester while Run or Wait waits and
// nothing can happen without time moving. Callbacks due run in their own
// goroutines, as with time.AfterFunc.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    int

	// running counts callbacks started and not yet returned; changes counts
	// every start and return, so that a tester can tell that none slipped
	// between two looks.
	running atomic.Int64
	changes atomic.Uint64
}

// NewVirtualClock returns a clock standing at start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start.UTC()} }

// Now is the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f in its own goroutine when virtual time reaches now+d
// (at once when d <= 0). The function it returns cancels the call if it has
// not started and reports whether it did.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	if d <= 0 {
		c.mu.Unlock()
		c.spawn(f)
		return func() bool { return false }
	}
	c.seq++
	t := &vtimer{at: c.now.Add(d), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.index < 0 {
			return false
		}
		heap.Remove(&c.timers, t.index)
		return true
	}
}

// Advance moves time forward by d, starting the callbacks that fall due.
func (c *VirtualClock) Advance(d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

// AdvanceTo moves time forward to t (never back), starting the callbacks
// that fall due in the order of their times.
func (c *VirtualClock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t.UTC()
	}
	c.fireLocked(c.now)
}

// spawn runs f in its own goroutine, counted as running.
func (c *VirtualClock) spawn(f func()) {
	c.running.Add(1)
	c.changes.Add(1)
	go c.run(f)
}

func (c *VirtualClock) run(f func()) {
	defer func() {
		c.changes.Add(1)
		c.running.Add(-1)
	}()
	f()
}

// fireWithin runs at once, without moving time, the callbacks due within d
// from now, and reports whether there were any. The tester wakes the
// runtime's pollers this way: their waits are shorter than d.
func (c *VirtualClock) fireWithin(d time.Duration) bool {
	c.mu.Lock()
	return c.fireLocked(c.now.Add(d)) > 0
}

// fireLocked starts the callbacks due at limit and unlocks c.mu. They are
// counted as running before the lock is released: whoever sees the clock
// after the move also sees what it set off.
func (c *VirtualClock) fireLocked(limit time.Time) int {
	var due []*vtimer
	for len(c.timers) > 0 && !c.timers[0].at.After(limit) {
		due = append(due, heap.Pop(&c.timers).(*vtimer))
	}
	c.running.Add(int64(len(due)))
	c.changes.Add(uint64(len(due)))
	c.mu.Unlock()
	for _, t := range due {
		go c.run(t.f)
	}
	return len(due)
}

// next is the time of the earliest pending callback; false when none is pending.
func (c *VirtualClock) next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}

type vtimer struct {
	at    time.Time
	seq   int
	f     func()
	index int
}

// timerHeap orders pending callbacks by time, then by the order they were set.
type timerHeap []*vtimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
