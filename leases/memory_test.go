package leases

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFakeClockStore() (*MemoryStore, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := NewMemoryStore()
	s.SetClock(clock.now)
	return s, clock
}

func TestMemoryStoreContract(t *testing.T) {
	s, clock := newFakeClockStore()
	const d = 15 * time.Second
	testStoreContract(t, harness{store: s, d: d, expire: func() { clock.advance(d) }})
}

func TestMemoryStoreExpiresExactly(t *testing.T) {
	s, clock := newFakeClockStore()
	ctx := context.Background()
	a := mustAcquire(t, s, 0, "host-a", time.Second)
	if info := leaseInfo(t, mustList(t, s), 0); !info.Expires.Equal(clock.now().Add(time.Second)) {
		t.Fatalf("expiry %v, want %v", info.Expires, clock.now().Add(time.Second))
	}
	clock.advance(999 * time.Millisecond)
	if _, err := s.Acquire(ctx, 0, "host-b", time.Second); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("Acquire 1ms before expiry: %v, want ErrLeaseHeld", err)
	}
	if err := s.Renew(ctx, a); err != nil {
		t.Fatal(err)
	}
	clock.advance(999 * time.Millisecond)
	if _, err := s.Acquire(ctx, 0, "host-b", time.Second); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("Acquire before the renewed expiry: %v, want ErrLeaseHeld", err)
	}
	clock.advance(time.Millisecond)
	if _, err := s.Acquire(ctx, 0, "host-b", time.Second); err != nil {
		t.Fatalf("Acquire at expiry: %v", err)
	}
}

func TestMemoryStoreBreak(t *testing.T) {
	s, _ := newFakeClockStore()
	ctx := context.Background()
	a := mustAcquire(t, s, 0, "host-a", time.Minute)
	s.Break(0)
	if info := leaseInfo(t, mustList(t, s), 0); info.State != Expired {
		t.Fatalf("broken lease listed %+v, want expired", info)
	}
	if err := s.Renew(ctx, a); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Renew of a broken lease: %v, want ErrLeaseLost", err)
	}
	if b := mustAcquire(t, s, 0, "host-b", time.Minute); b.Epoch != 2 {
		t.Fatalf("epoch %d, want 2", b.Epoch)
	}
}

func TestMemoryStoreHonoursContext(t *testing.T) {
	s := NewMemoryStore()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Acquire(ctx, 0, "host-a", time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: %v", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("List with a cancelled context: %v", err)
	}
}
