package leases

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/azdurable/azdurable/core"
)

// MemoryStore is a Store in memory, for tests of code that uses leases. It
// behaves as BlobStore does on Azure: a lease lives for its duration after
// Acquire or Renew, on the store's clock (time.Now unless SetClock changes
// it); a second Acquire is refused while it lives; a holder may renew or
// release its expired lease as long as nobody acquired it since; Release
// frees the partition at once. Expires in listings is exact. Any duration
// above zero is accepted.
type MemoryStore struct {
	mu     sync.Mutex
	now    func() time.Time
	leases map[int]*memLease
	hosts  map[string]*Host
	seq    uint64
}

type memLease struct {
	owner   string
	epoch   int64
	id      string // "" once released
	d       time.Duration
	expires time.Time
	broken  bool
}

var (
	_ Store           = (*MemoryStore)(nil)
	_ DurationChecker = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty store on the wall clock.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{now: time.Now, leases: map[int]*memLease{}, hosts: map[string]*Host{}}
}

// SetClock makes the store read time from now; tests use it to expire leases
// without waiting.
func (s *MemoryStore) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Break ends the partition's lease as Azure's break lease does: the holder
// can no longer renew or release it, and anyone may acquire it. Tests use it
// to simulate an operator's intervention.
func (s *MemoryStore) Break(partition int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.leases[partition]; l != nil && l.id != "" {
		l.broken = true
	}
}

// CheckDuration accepts any positive duration.
func (s *MemoryStore) CheckDuration(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%w: lease duration %s must be positive", core.ErrInvalidInput, d)
	}
	return nil
}

// state reports the lease's state at now; l may be nil.
func (l *memLease) state(now time.Time) State {
	switch {
	case l == nil || l.id == "":
		return Free
	case l.broken || !now.Before(l.expires):
		return Expired
	}
	return Held
}

func (s *MemoryStore) newID() string {
	s.seq++
	return fmt.Sprintf("mem-%d", s.seq)
}

// Acquire implements Store.
func (s *MemoryStore) Acquire(ctx context.Context, partition int, owner string, d time.Duration) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkArgs(partition, owner); err != nil {
		return nil, err
	}
	if err := s.CheckDuration(d); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	l := s.leases[partition]
	if l.state(now) == Held {
		return nil, heldErr(partition, l.owner)
	}
	if l == nil {
		l = &memLease{}
		s.leases[partition] = l
	}
	*l = memLease{owner: owner, epoch: l.epoch + 1, id: s.newID(), d: d, expires: now.Add(d)}
	return &Lease{Partition: partition, Owner: owner, Epoch: l.epoch, ID: l.id, Duration: d}, nil
}

// current returns the stored lease when l is still it (possibly expired but
// not broken), else nil.
func (s *MemoryStore) current(l *Lease) *memLease {
	m := s.leases[l.Partition]
	if m == nil || m.id == "" || m.id != l.ID || m.broken {
		return nil
	}
	return m
}

// Renew implements Store.
func (s *MemoryStore) Renew(ctx context.Context, l *Lease) error {
	return s.withCurrent(ctx, "renew", l, func(m *memLease) { m.expires = s.now().Add(m.d) })
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, l *Lease) error {
	return s.withCurrent(ctx, "release", l, func(m *memLease) { m.id = "" })
}

// withCurrent applies f to the stored lease while l is still it, under the
// store's lock; otherwise the lease is lost.
func (s *MemoryStore) withCurrent(ctx context.Context, op string, l *Lease, f func(*memLease)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkLease(l); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.current(l)
	if m == nil {
		return lostErr(op, l)
	}
	f(m)
	return nil
}

// Change implements Store.
func (s *MemoryStore) Change(ctx context.Context, l *Lease, owner string) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkLease(l); err != nil {
		return nil, err
	}
	if err := checkArgs(l.Partition, owner); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.current(l)
	if m == nil || m.state(s.now()) != Held {
		return nil, lostErr("change", l)
	}
	m.owner, m.epoch, m.id = owner, m.epoch+1, s.newID()
	return &Lease{Partition: l.Partition, Owner: owner, Epoch: m.epoch, ID: m.id, Duration: m.d}, nil
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	snap := &Snapshot{Time: now}
	for _, p := range slices.Sorted(maps.Keys(s.leases)) {
		l := s.leases[p]
		info := Info{Partition: p, State: l.state(now), Owner: l.owner, Epoch: l.epoch}
		if info.State == Held {
			info.Expires = l.expires
		}
		snap.Leases = append(snap.Leases, info)
	}
	for _, id := range slices.Sorted(maps.Keys(s.hosts)) {
		snap.Hosts = append(snap.Hosts, copyHost(s.hosts[id]))
	}
	return snap, nil
}

// PutHost implements Store.
func (s *MemoryStore) PutHost(ctx context.Context, h *Host) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := core.ValidateName("host id", h.ID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := copyHost(h)
	c.Heartbeat = s.now()
	s.hosts[h.ID] = &c
	return nil
}

// DeleteHost implements Store.
func (s *MemoryStore) DeleteHost(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hosts, id)
	return nil
}

func copyHost(h *Host) Host {
	c := Host{ID: h.ID, Heartbeat: h.Heartbeat, Intents: slices.Clone(h.Intents), Expires: maps.Clone(h.Expires)}
	slices.SortFunc(c.Intents, func(a, b Intent) int { return a.Partition - b.Partition })
	return c
}
