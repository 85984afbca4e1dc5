package partition

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
)

// Manager decides which partitions this host runs, with leases in a
// leases.Store. It implements core.Ownership; run it once, through
// core.Options.Ownership or by calling Run.
type Manager struct {
	o     Options
	t     timings
	store leases.Store
	log   zerolog.Logger

	started atomic.Bool
	ready   atomic.Bool
	stats   counters

	mu      sync.Mutex
	holders map[int]*holder // partitions whose lease this host holds or is acquiring
	owned   map[int]bool    // partitions the handler runs
	backoff map[int]backoff // partitions not to acquire again before a time
	wg      sync.WaitGroup  // holders
	h       core.PartitionHandler
	stop    chan struct{}   // closed when holders must give their partitions up
	base    context.Context // Run's context without its cancellation
	runCtx  context.Context // Run's context
}

var _ core.Ownership = (*Manager)(nil)

// backoff keeps a partition whose PartitionAcquired failed from being
// acquired again at once.
type backoff struct {
	until    time.Time
	failures int
}

// Stats are the manager's counters since it started.
type Stats struct {
	Acquired      int64 // partitions acquired and opened by the handler
	Released      int64 // partitions given up on purpose: hand-over, shutdown, failed open
	Stolen        int64 // partitions acquired from another host by cooperative hand-over
	HandedOver    int64 // partitions handed over to another host at its request
	Lost          int64 // partitions given up because their lease could not be renewed in time or was taken
	RenewFailures int64 // renewals that failed (each counted once, whatever the reason)
	StorageErrors int64 // store calls that failed for another reason than a lease conflict
	OpenFailures  int64 // PartitionAcquired calls that returned an error
	Scans         int64 // successful scans
}

type counters struct {
	acquired, released, stolen, handedOver, lost, renewFailures, storageErrors, openFailures, scans atomic.Int64
}

// New checks the options and returns a manager that is not running yet.
func New(o Options) (*Manager, error) {
	opts, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Manager{
		o:       opts,
		t:       newTimings(opts),
		store:   opts.Store,
		log:     opts.Logger.With().Str("host", opts.HostID).Logger(),
		holders: map[int]*holder{},
		owned:   map[int]bool{},
		backoff: map[int]backoff{},
	}, nil
}

// Owned lists, sorted, the partitions the handler runs now: acquired,
// opened, and not yet given up.
func (m *Manager) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

// Ready reports whether a scan of the leases has succeeded yet.
func (m *Manager) Ready() bool { return m.ready.Load() }

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	c := &m.stats
	return Stats{Acquired: c.acquired.Load(), Released: c.released.Load(), Stolen: c.stolen.Load(),
		HandedOver: c.handedOver.Load(), Lost: c.lost.Load(), RenewFailures: c.renewFailures.Load(),
		StorageErrors: c.storageErrors.Load(), OpenFailures: c.openFailures.Load(), Scans: c.scans.Load()}
}

// Run implements core.Ownership. It writes the host record, then scans
// every AcquireInterval until ctx is done. Then it deletes the host record,
// hands every partition back (PartitionReleased, then the lease's release)
// and returns ctx.Err().
func (m *Manager) Run(ctx context.Context, h core.PartitionHandler) error {
	if h == nil {
		return fmt.Errorf("%w: partition.Manager.Run: nil handler", core.ErrInvalidInput)
	}
	if !m.started.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: partition.Manager.Run: a manager runs once", core.ErrInvalidInput)
	}
	m.mu.Lock()
	m.h, m.stop, m.base, m.runCtx = h, make(chan struct{}), context.WithoutCancel(ctx), ctx
	m.mu.Unlock()
	m.log.Info().Int("partitions", m.o.Partitions).Dur("lease", m.t.lease).Dur("renew", m.t.renew).
		Dur("acquire", m.t.acquire).Dur("drain", m.t.drain).Msg("partition manager started")

	s := &scanner{m: m, mine: map[int]intentState{}, seen: map[seenKey]time.Time{}, freeSince: map[int]time.Time{}}
	wait := time.NewTimer(0)
	defer wait.Stop()
	var nextBeat, nextScan time.Time
	for {
		select {
		case <-ctx.Done():
			m.shutdown()
			return ctx.Err()
		case <-wait.C:
		}
		if !time.Now().Before(nextBeat) {
			nextBeat = time.Now().Add(m.t.retry)
			if s.heartbeat(ctx) {
				nextBeat = s.lastBeat.Add(m.t.renew)
			}
		}
		if !time.Now().Before(nextScan) {
			beat := s.lastBeat
			nextScan = time.Now().Add(m.t.scanInterval(s.scan(ctx)))
			if s.lastBeat != beat { // the scan wrote the record
				nextBeat = s.lastBeat.Add(m.t.renew)
			}
		}
		wait.Reset(time.Until(minTime(nextBeat, nextScan)))
	}
}

// scanInterval is the pause before the next scan: AcquireInterval while
// anything moves, SteadyScanInterval once the host is steady. Jitter (90% to
// 100%) keeps hosts from scanning in step; the pause is never longer than
// the interval, which bounds hand-over and fail-over times.
func (t timings) scanInterval(steady bool) time.Duration {
	d := t.acquire
	if steady {
		d = t.steady
	}
	return time.Duration(float64(d) * (0.9 + 0.1*rand.Float64()))
}

// shutdown deletes the host record first, so that no other host plans to
// give this one partitions, then lets every holder go and waits for them.
func (m *Manager) shutdown() {
	ctx, cancel := context.WithTimeout(m.base, m.t.op)
	if err := m.store.DeleteHost(ctx, m.o.HostID); err != nil {
		m.stats.storageErrors.Add(1)
		m.log.Warn().Err(err).Msg("delete host record")
	}
	cancel()
	m.mu.Lock()
	close(m.stop)
	m.mu.Unlock()
	m.wg.Wait()
	m.log.Info().Msg("partition manager stopped")
}

// startHolder starts acquiring partition p unless it is held or backing off.
func (m *Manager) startHolder(p int, stolen bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holders[p] != nil || now.Before(m.backoff[p].until) {
		return
	}
	hd := newHolder(m, p, stolen)
	m.holders[p] = hd
	m.wg.Add(1)
	go hd.run()
}

// settled reports whether the handler runs every partition this host
// holds a lease for: none is being acquired, opened or given up.
func (m *Manager) settled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.holders {
		if !m.owned[p] {
			return false
		}
	}
	return true
}

// holding reports whether this host holds or is acquiring partition p.
func (m *Manager) holding(p int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holders[p] != nil
}

// requestHandOver asks the holder of p to give it up.
func (m *Manager) requestHandOver(p int, to string) {
	m.mu.Lock()
	hd := m.holders[p]
	m.mu.Unlock()
	if hd != nil {
		hd.handOver(to)
	}
}

// leaseExpiries reports, per held partition, when its lease expires unless
// renewed, for the host record.
func (m *Manager) leaseExpiries() map[int]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int]time.Time, len(m.holders))
	for p, hd := range m.holders {
		if exp := hd.expiry(); !exp.IsZero() {
			out[p] = exp
		}
	}
	return out
}

// storageError counts and logs a failed store call; lease conflicts are
// not storage errors.
func (m *Manager) storageError(err error, msg string, partition int) {
	if errors.Is(err, leases.ErrLeaseHeld) || errors.Is(err, leases.ErrLeaseLost) {
		return
	}
	m.stats.storageErrors.Add(1)
	ev := m.log.Warn().Err(err)
	if partition >= 0 {
		ev = ev.Int("partition", partition)
	}
	ev.Msg(msg)
}

// opened records that the handler runs partition p.
func (m *Manager) opened(p int, stolen bool) {
	m.mu.Lock()
	m.owned[p] = true
	delete(m.backoff, p)
	m.mu.Unlock()
	m.stats.acquired.Add(1)
	if stolen {
		m.stats.stolen.Add(1)
	}
}

// openFailed keeps partition p from being acquired again for a while,
// doubling the pause with each failure in a row, up to LeaseDuration.
func (m *Manager) openFailed(p int, err error) {
	m.stats.openFailures.Add(1)
	m.mu.Lock()
	b := m.backoff[p]
	pause := min(m.t.acquire<<min(b.failures, 16), m.t.lease)
	m.backoff[p] = backoff{until: time.Now().Add(pause), failures: b.failures + 1}
	m.mu.Unlock()
	m.log.Warn().Err(err).Int("partition", p).Dur("retry_in", pause).Msg("partition could not be opened; releasing it")
}
