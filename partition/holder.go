package partition

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/leases"
)

// holder runs one partition's lease from Acquire to Release: it opens the
// partition in the handler, renews the lease, and gives the partition up
// when another host claims it, at shutdown, or when the lease cannot be
// renewed in time. One goroutine per held partition, so that a slow store
// call or a long drain of one partition never delays another's renewals.
type holder struct {
	m      *Manager
	p      int
	stolen bool // acquired to end a hand-over toward this host

	handOverCh chan struct{}
	once       sync.Once
	to         string // the claiming host; written before handOverCh closes

	mu  sync.Mutex
	exp time.Time // when the lease expires unless renewed; zero before Acquire
}

func newHolder(m *Manager, p int, stolen bool) *holder {
	return &holder{m: m, p: p, stolen: stolen, handOverCh: make(chan struct{})}
}

// handOver asks the holder to give the partition to another host.
func (hd *holder) handOver(to string) {
	hd.once.Do(func() {
		hd.to = to
		close(hd.handOverCh)
	})
}

func (hd *holder) expiry() time.Time {
	hd.mu.Lock()
	defer hd.mu.Unlock()
	return hd.exp
}

func (hd *holder) setExpiry(t time.Time) {
	hd.mu.Lock()
	hd.exp = t
	hd.mu.Unlock()
}

// Reasons to give a partition up.
const (
	reasonHandOver   = "hand-over"
	reasonShutdown   = "shutdown"
	reasonLost       = "lease taken"
	reasonNoRenewal  = "lease not renewed in time"
	reasonOpenFailed = "open failed"
)

// run is the holder's goroutine.
func (hd *holder) run() {
	m, t, p := hd.m, hd.m.t, hd.p
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		if m.holders[p] == hd {
			delete(m.holders, p)
		}
		delete(m.owned, p)
		m.mu.Unlock()
	}()

	// Not Run's context: an Acquire cut short may leave a lease behind that
	// nobody releases until it expires. Shutdown waits for it instead.
	actx, cancel := context.WithTimeout(m.base, t.op)
	sent := time.Now()
	l, err := m.store.Acquire(actx, p, m.o.HostID, t.lease)
	cancel()
	if err != nil {
		// Another host was quicker, or the store failed: the next scan
		// decides again.
		m.storageError(err, "acquire lease", p)
		return
	}
	confirmed := sent
	hd.setExpiry(confirmed.Add(t.lease))
	log := m.log.With().Int("partition", p).Int64("epoch", l.Epoch).Logger()

	// safeUntil: processing must have stopped by then, a margin before the
	// lease can expire. releaseBy: without a renewal by then, start giving
	// the partition up, so that the drain ends by safeUntil.
	safeUntil := func() time.Time { return confirmed.Add(t.lease - t.margin) }
	releaseBy := func() time.Time { return safeUntil().Add(-t.drain) }

	openCtx, cancelOpen := context.WithCancel(m.runCtx)
	defer cancelOpen()
	opened := make(chan error, 1)
	go func() { opened <- m.h.PartitionAcquired(openCtx, p) }()

	var (
		reason      string    // why the partition is being given up; "" while kept
		drainBy     time.Time // the drain's deadline, once reason is set
		active      bool      // the handler runs the partition
		drained     chan struct{}
		cancelDrain context.CancelFunc = func() {}
		leaseGone   bool               // someone else has the lease: do not renew or release it
	)
	defer func() { cancelDrain() }()
	startDrain := func() {
		active = false
		var dctx context.Context
		dctx, cancelDrain = context.WithDeadline(m.base, drainBy)
		drained = make(chan struct{})
		go func() {
			m.h.PartitionReleased(dctx, p)
			close(drained)
		}()
	}
	// giveUp records why the partition goes and starts the drain, now if
	// the handler runs the partition, else once PartitionAcquired returns.
	giveUp := func(why string, by time.Time) {
		if reason != "" {
			return
		}
		reason, drainBy = why, by
		if active {
			startDrain()
		} else {
			cancelOpen()
		}
	}

	renew := time.NewTimer(t.renew)
	defer renew.Stop()
	deadline := time.NewTimer(time.Until(releaseBy()))
	defer deadline.Stop()
	handOver, stop := hd.handOverCh, m.stop
	for {
		select {
		case err := <-opened:
			opened = nil
			if err != nil {
				switch {
				case reason != "":
				case m.runCtx.Err() != nil:
					reason = reasonShutdown
				default:
					m.openFailed(p, err)
					reason = reasonOpenFailed
				}
				hd.finish(l, leaseGone, reason, log)
				return
			}
			if reason != "" {
				startDrain()
				continue
			}
			active = true
			m.opened(p, hd.stolen)
			log.Info().Bool("handed_over", hd.stolen).Msg("partition acquired")

		case <-renew.C:
			now := time.Now()
			limit := now.Add(t.op)
			if reason == "" {
				// A renewal must not keep the partition running past
				// releaseBy; once there, the deadline case gives it up.
				if !now.Before(releaseBy()) {
					renew.Reset(t.retry)
					continue
				}
				limit = minTime(limit, releaseBy())
			}
			rctx, cancel := context.WithDeadline(m.base, limit)
			err := m.store.Renew(rctx, l)
			cancel()
			switch {
			case err == nil:
				// The lease runs from when the request was sent, at the latest.
				confirmed = now
				hd.setExpiry(confirmed.Add(t.lease))
				deadline.Reset(time.Until(releaseBy()))
				renew.Reset(t.renew)
			case errors.Is(err, leases.ErrLeaseLost):
				m.stats.renewFailures.Add(1)
				leaseGone = true
				deadline.Stop()
				if reason == "" {
					m.stats.lost.Add(1)
					log.Warn().Msg("partition lease taken by another host; stopping at once")
				}
				// Another host may run the partition already: abandon
				// in-flight work now.
				giveUp(reasonLost, time.Now())
				cancelDrain()
			default:
				m.stats.renewFailures.Add(1)
				m.storageError(err, "renew lease", p)
				renew.Reset(t.retry)
			}

		case <-deadline.C:
			if reason == "" {
				m.stats.lost.Add(1)
				log.Warn().Time("safe_until", safeUntil()).Msg("partition lease not renewed in time; giving the partition up before it can expire")
			}
			giveUp(reasonNoRenewal, safeUntil())

		case <-handOver:
			handOver = nil
			if reason == "" {
				log.Info().Str("to", hd.to).Msg("handing partition over")
			}
			giveUp(reasonHandOver, minTime(time.Now().Add(t.drain), safeUntil()))

		case <-stop:
			stop = nil
			giveUp(reasonShutdown, minTime(time.Now().Add(t.drain), safeUntil()))

		case <-drained:
			hd.finish(l, leaseGone, reason, log)
			return
		}
	}
}

// finish releases the lease once the handler no longer runs the partition,
// and counts why it went.
func (hd *holder) finish(l *leases.Lease, leaseGone bool, reason string, log zerolog.Logger) {
	m := hd.m
	m.mu.Lock()
	delete(m.owned, hd.p)
	m.mu.Unlock()
	if !leaseGone {
		ctx, cancel := context.WithTimeout(m.base, m.t.op)
		err := m.store.Release(ctx, l)
		cancel()
		if err != nil {
			// The lease expires by itself; the partition is free after that.
			m.storageError(err, "release lease", hd.p)
		}
	}
	switch reason {
	case reasonHandOver:
		m.stats.handedOver.Add(1)
		m.stats.released.Add(1)
	case reasonShutdown, reasonOpenFailed:
		m.stats.released.Add(1)
	}
	log.Info().Str("reason", reason).Msg("partition released")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
