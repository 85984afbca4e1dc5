package partition

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/azdurable/azdurable/leases"
)

// scanner is the state of Run's loop: this host's intents and what it
// observed of others across scans. Only Run's goroutine uses it.
type scanner struct {
	m *Manager
	// mine are this host's intents by partition.
	mine   map[int]intentState
	serial int64
	// seen is when this host first saw each of the others' intents; intent
	// ages are measured on the local clock, so that clock skew between
	// hosts does not matter.
	seen map[seenKey]time.Time
	// freeSince is when each partition was first seen free and unclaimed.
	freeSince map[int]time.Time
	lastBeat  time.Time
}

type intentState struct {
	serial int64
	since  time.Time
}

type seenKey struct {
	host      string
	partition int
	serial    int64
}

// heartbeat writes the host record: the heartbeat, the intents and the
// lease expiries. It reports whether the write succeeded.
func (s *scanner) heartbeat(ctx context.Context) bool {
	m := s.m
	h := &leases.Host{ID: m.o.HostID, Expires: m.leaseExpiries()}
	for _, p := range slices.Sorted(maps.Keys(s.mine)) {
		h.Intents = append(h.Intents, leases.Intent{Partition: p, Serial: s.mine[p].serial})
	}
	octx, cancel := context.WithTimeout(ctx, m.t.op)
	defer cancel()
	if err := m.store.PutHost(octx, h); err != nil {
		if ctx.Err() == nil {
			m.storageError(err, "write host record", -1)
		}
		return false
	}
	s.lastBeat = time.Now()
	return true
}

// scan reads the leases and host records, plans, and acts on the plan. It
// reports whether the host is steady (see steady).
func (s *scanner) scan(ctx context.Context) bool {
	m := s.m
	octx, cancel := context.WithTimeout(ctx, m.t.op)
	snap, err := m.store.List(octx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.storageError(err, "list leases", -1)
		}
		return false
	}
	m.stats.scans.Add(1)
	m.ready.Store(true)
	now := time.Now()
	v := s.view(snap, now)
	pl := makePlan(v)

	for _, p := range pl.handOver {
		m.requestHandOver(p, v.claim[p])
	}
	for _, p := range pl.acquire {
		m.startHolder(p, pl.stolen[p], now)
	}
	// A partition that stays free although a plan gives it to some host
	// (that host may see another picture, or fail to open it) is taken at
	// the next scan by a host below its share, and after freeGrace by
	// anyone.
	room := pl.room
	for p := range v.partitions {
		if v.state[p] == leases.Held || v.claim[p] != "" || m.holding(p) {
			delete(s.freeSince, p)
			continue
		}
		since, ok := s.freeSince[p]
		if !ok {
			s.freeSince[p] = now
			continue
		}
		switch {
		case room > 0 && now.Sub(since) >= m.t.acquire/2:
			room--
			m.startHolder(p, false, now)
		case now.Sub(since) >= m.t.freeGrace:
			m.startHolder(p, false, now)
		}
	}
	changed := s.setIntents(pl.intents, now)
	if changed {
		s.heartbeat(ctx)
	}
	s.pruneHosts(ctx, snap, v)
	return !changed && s.steady(snap, v, pl)
}

// steady reports whether nothing can change before the next scan unless
// a host joins: this host is the only live one, holds its share and runs
// all of it, every partition is held by a host whose heartbeat is on time,
// and no host asks for a partition. With other live hosts a host is never
// steady, so that partitions a stopping host releases are taken at once
// (within an AcquireInterval), not at a slow scan. A late heartbeat is the
// sign of a host that may have died: its leases expire at most
// LeaseDuration after its last renewal, and the hosts must be scanning
// every AcquireInterval by then.
func (s *scanner) steady(snap *leases.Snapshot, v *view, pl plan) bool {
	m := s.m
	if len(v.live) > 1 || len(pl.acquire) > 0 || len(pl.intents) > 0 || len(pl.handOver) > 0 || pl.room > 0 || len(s.mine) > 0 || !m.settled() {
		return false
	}
	live := map[string]bool{}
	for _, h := range v.live {
		live[h] = true
	}
	beat := map[string]time.Time{}
	for _, h := range snap.Hosts {
		beat[h.ID] = h.Heartbeat
		if h.ID != v.self && live[h.ID] && len(h.Intents) > 0 {
			return false
		}
	}
	for p := range v.partitions {
		if v.state[p] != leases.Held || v.claim[p] != "" {
			return false
		}
		if h := v.holder[p]; h != v.self {
			hb, ok := beat[h]
			if !ok || snap.Time.Sub(hb) > m.t.late {
				return false
			}
		}
	}
	return true
}

// view builds the scan's picture of ownership from a listing.
func (s *scanner) view(snap *leases.Snapshot, now time.Time) *view {
	m := s.m
	n := m.o.Partitions
	v := &view{self: m.o.HostID, partitions: n, state: make([]leases.State, n), holder: make([]string, n), claim: make([]string, n)}
	// A host whose lease expired stopped renewing: it is stuck or dead,
	// whatever its heartbeat says. This host knows it is alive.
	stuck := map[string]bool{}
	for _, l := range snap.Leases {
		if l.Partition >= n {
			continue
		}
		v.state[l.Partition], v.holder[l.Partition] = l.State, l.Owner
		if l.State == leases.Expired {
			stuck[l.Owner] = true
		}
	}
	var others []leases.Host
	selfLive := false
	for _, h := range snap.Hosts {
		if snap.Time.Sub(h.Heartbeat) > m.t.live || (stuck[h.ID] && h.ID != v.self) {
			continue
		}
		v.live = append(v.live, h.ID)
		if h.ID == v.self {
			selfLive = true
		} else {
			others = append(others, h)
		}
	}
	slices.Sort(v.live)

	claim := func(host string, p int) {
		if v.state[p] == leases.Held && v.holder[p] == host {
			return // it has it already
		}
		if v.claim[p] == "" || host < v.claim[p] {
			v.claim[p] = host
		}
	}
	present := map[seenKey]bool{}
	for _, h := range others {
		for _, in := range h.Intents {
			if in.Partition >= n {
				continue
			}
			k := seenKey{host: h.ID, partition: in.Partition, serial: in.Serial}
			present[k] = true
			first, ok := s.seen[k]
			if !ok {
				first = now
				s.seen[k] = now
			}
			if now.Sub(first) < m.t.intentGrace {
				claim(h.ID, in.Partition)
			}
		}
	}
	for k := range s.seen {
		if !present[k] {
			delete(s.seen, k)
		}
	}
	if selfLive {
		for p, in := range s.mine {
			if now.Sub(in.since) < m.t.intentGrace {
				claim(v.self, p)
			}
		}
	}
	return v
}

// setIntents makes this host's intents the plan's, keeping the serial of
// those it still wants while they are young; it reports a change.
func (s *scanner) setIntents(want []int, now time.Time) bool {
	changed := false
	keep := map[int]bool{}
	for _, p := range want {
		keep[p] = true
		if in, ok := s.mine[p]; ok && now.Sub(in.since) < s.m.t.intentGrace {
			continue
		}
		s.serial++
		s.mine[p] = intentState{serial: s.serial, since: now}
		changed = true
	}
	for p := range s.mine {
		if !keep[p] {
			delete(s.mine, p)
			changed = true
		}
	}
	return changed
}

// pruneHosts deletes the records of hosts long gone (a killed host leaves
// its record behind). Only the live host with the smallest id does it.
func (s *scanner) pruneHosts(ctx context.Context, snap *leases.Snapshot, v *view) {
	m := s.m
	if len(v.live) == 0 || v.live[0] != v.self {
		return
	}
	for _, h := range snap.Hosts {
		if snap.Time.Sub(h.Heartbeat) <= m.t.staleHost {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, m.t.op)
		err := m.store.DeleteHost(octx, h.ID)
		cancel()
		if err != nil {
			m.storageError(err, "delete stale host record", -1)
			return
		}
		m.log.Info().Str("stale_host", h.ID).Time("heartbeat", h.Heartbeat).Msg("deleted a stale host record")
	}
}
