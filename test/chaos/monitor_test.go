package chaos_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/azdurable/azdurable/test/cluster"
)

// pollInterval is how often the monitor reads every host's /status.
const pollInterval = 200 * time.Millisecond

// recovery is a fault the monitor watches the cluster recover from.
type recovery struct {
	kind string // kill, cut, rejoin or azurite
	what string
	at   time.Time
	// parts are the partitions the failed host owned (kill, cut); the
	// fault is over once hosts that run and reach storage own them all.
	parts []int
	// slot is the host that must own partitions again (rejoin).
	slot *slot
	// baseline are the hosts' committed episodes when storage came back
	// (azurite); the fault is over once a host commits another.
	baseline map[*cluster.Host]int64

	took time.Duration
	done bool
}

// hostView is what a host last reported.
type hostView struct {
	host      *cluster.Host
	owned     []int
	episodes  int64
	conflicts int64
}

// monitor reads the hosts' /status in the background and times the
// recoveries.
type monitor struct {
	r *run

	mu       sync.Mutex
	last     map[*slot]hostView
	covered  bool // hosts that run and reach storage own every partition
	pending  []*recovery
	finished []*recovery

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newMonitor(r *run) *monitor {
	return &monitor{r: r, last: map[*slot]hostView{}}
}

func (m *monitor) start() {
	ctx, cancel := context.WithCancel(m.r.ctx)
	m.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		for {
			m.poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (m *monitor) stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
}

func (m *monitor) poll(ctx context.Context) {
	views := map[*slot]hostView{}
	live := map[*slot]bool{}
	ownedLive := map[int]bool{}
	for _, s := range m.r.slots {
		h, cut := s.current()
		if h == nil || !h.Running() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := h.Status(sctx)
		cancel()
		if err != nil {
			continue
		}
		v := hostView{host: h, owned: st.Owned, episodes: st.Episodes()}
		if st.Runtime != nil {
			v.conflicts = st.Runtime.Conflicts
		}
		views[s] = v
		if !cut {
			live[s] = true
			for _, p := range st.Owned {
				ownedLive[p] = true
			}
		}
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for s, v := range views {
		m.last[s] = v
	}
	m.covered = len(ownedLive) == m.r.plan.partitions
	kept := m.pending[:0]
	for _, rec := range m.pending {
		switch rec.kind {
		case "kill", "cut":
			rec.parts = slices.DeleteFunc(rec.parts, func(p int) bool { return ownedLive[p] })
			rec.done = len(rec.parts) == 0
		case "rejoin":
			rec.done = live[rec.slot] && len(views[rec.slot].owned) > 0
		case "azurite":
			for _, v := range views {
				if v.episodes > rec.baseline[v.host] {
					rec.done = true
				}
			}
		}
		if rec.done {
			rec.took = now.Sub(rec.at)
			m.finished = append(m.finished, rec)
		} else {
			kept = append(kept, rec)
		}
	}
	m.pending = kept
}

// expect starts timing a recovery.
func (m *monitor) expect(rec recovery) {
	rec.parts = slices.Clone(rec.parts)
	m.mu.Lock()
	m.pending = append(m.pending, &rec)
	m.mu.Unlock()
}

// owned is what the slot's current host last reported it owns.
func (m *monitor) owned(s *slot) []int {
	h, _ := s.current()
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.last[s]; ok && v.host == h {
		return slices.Clone(v.owned)
	}
	return nil
}

// episodes are the episodes each host last reported.
func (m *monitor) episodes() map[*cluster.Host]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[*cluster.Host]int64{}
	for _, v := range m.last {
		out[v.host] = v.episodes
	}
	return out
}

// conflicts sums the commits rejected by their token, as the running hosts
// last reported them (killed hosts took their counts along).
func (m *monitor) conflicts() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, v := range m.last {
		n += v.conflicts
	}
	return n
}

// waitCovered waits until the hosts that run own every partition.
func (m *monitor) waitCovered(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(pollInterval / 2)
	defer t.Stop()
	for {
		m.mu.Lock()
		covered := m.covered
		m.mu.Unlock()
		if covered {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("after %v: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-t.C:
		}
	}
}

// recoveries returns the finished recoveries of a kind and the number still
// pending.
func (m *monitor) recoveries(kind string) (took []time.Duration, pending int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rec := range m.finished {
		if rec.kind == kind {
			took = append(took, rec.took)
		}
	}
	for _, rec := range m.pending {
		if rec.kind == kind {
			pending++
		}
	}
	slices.Sort(took)
	return took, pending
}
