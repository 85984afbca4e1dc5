package leases

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

// harness is a store under test with a way to let lease time pass.
type harness struct {
	store Store
	// d is the lease duration the tests use.
	d time.Duration
	// expire lets more than d pass on the store's clock.
	expire func()
	// heartbeatSlack is how far a heartbeat may be from the snapshot time.
	heartbeatSlack time.Duration
	// parallel says whether subtests may run at once (they use distinct
	// partitions and host ids).
	parallel bool
}

// testStoreContract checks the guarantees every Store documents.
func testStoreContract(t *testing.T, h harness) {
	ctx := context.Background()
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			if h.parallel {
				t.Parallel()
			}
			f(t)
		})
	}
	s := h.store

	run("SecondAcquirerRefused", func(t *testing.T) {
		const p = 1
		a := mustAcquire(t, s, p, "host-a", h.d)
		if a.Epoch != 1 || a.Owner != "host-a" || a.Partition != p {
			t.Fatalf("first lease = %+v, want epoch 1 owner host-a", a)
		}
		if _, err := s.Acquire(ctx, p, "host-b", h.d); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("second Acquire: %v, want ErrLeaseHeld", err)
		}
		if _, err := s.Acquire(ctx, p, "host-a", h.d); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("Acquire by the holder again: %v, want ErrLeaseHeld", err)
		}
		snap := mustList(t, s)
		info := leaseInfo(t, snap, p)
		if info.State != Held || info.Owner != "host-a" || info.Epoch != 1 {
			t.Fatalf("listed %+v, want held by host-a at epoch 1", info)
		}
		if !info.Expires.After(snap.Time.Add(-h.heartbeatSlack)) || info.Expires.After(snap.Time.Add(h.d+h.heartbeatSlack)) {
			t.Fatalf("listed expiry %v, want within the lease duration %v of %v", info.Expires, h.d, snap.Time)
		}
		if err := s.Renew(ctx, a); err != nil {
			t.Fatalf("Renew by the holder: %v", err)
		}
	})

	run("AcquireAfterExpiryBumpsEpoch", func(t *testing.T) {
		const p = 2
		a := mustAcquire(t, s, p, "host-a", h.d)
		h.expire()
		info := leaseInfo(t, mustList(t, s), p)
		if info.State != Expired || info.Owner != "host-a" || info.Epoch != 1 || !info.Expires.IsZero() {
			t.Fatalf("after expiry listed %+v, want expired, last owner host-a, epoch 1, no expiry", info)
		}
		b := mustAcquire(t, s, p, "host-b", h.d)
		if b.Epoch != 2 {
			t.Fatalf("epoch after expiry = %d, want 2", b.Epoch)
		}
		// The stale holder is told, distinctly, that the lease is gone.
		if err := s.Renew(ctx, a); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale Renew: %v, want ErrLeaseLost", err)
		}
		if err := s.Release(ctx, a); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale Release: %v, want ErrLeaseLost", err)
		}
		if _, err := s.Change(ctx, a, "host-c"); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale Change: %v, want ErrLeaseLost", err)
		}
		if err := s.Renew(ctx, b); err != nil {
			t.Fatalf("Renew by the new holder: %v", err)
		}
		info = leaseInfo(t, mustList(t, s), p)
		if info.State != Held || info.Owner != "host-b" || info.Epoch != 2 {
			t.Fatalf("listed %+v, want held by host-b at epoch 2", info)
		}
	})

	run("ExpiredButUntakenCanBeRenewed", func(t *testing.T) {
		const p = 3
		a := mustAcquire(t, s, p, "host-a", h.d)
		h.expire()
		if err := s.Renew(ctx, a); err != nil {
			t.Fatalf("Renew of an expired lease nobody took: %v", err)
		}
		if info := leaseInfo(t, mustList(t, s), p); info.State != Held || info.Epoch != 1 {
			t.Fatalf("listed %+v, want held again at epoch 1", info)
		}
		if _, err := s.Acquire(ctx, p, "host-b", h.d); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("Acquire after the renewal: %v, want ErrLeaseHeld", err)
		}
	})

	run("ReleaseFreesAtOnce", func(t *testing.T) {
		const p = 4
		a := mustAcquire(t, s, p, "host-a", h.d)
		if err := s.Release(ctx, a); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if info := leaseInfo(t, mustList(t, s), p); info.State != Free || info.Owner != "host-a" || info.Epoch != 1 {
			t.Fatalf("after release listed %+v, want free, last owner host-a, epoch 1", info)
		}
		if err := s.Renew(ctx, a); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Renew after Release: %v, want ErrLeaseLost", err)
		}
		if err := s.Release(ctx, a); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("second Release: %v, want ErrLeaseLost", err)
		}
		b := mustAcquire(t, s, p, "host-b", h.d)
		if b.Epoch != 2 {
			t.Fatalf("epoch = %d, want 2", b.Epoch)
		}
	})

	run("ExpiredLeaseReleasedByItsHolder", func(t *testing.T) {
		const p = 5
		a := mustAcquire(t, s, p, "host-a", h.d)
		h.expire()
		if err := s.Release(ctx, a); err != nil {
			t.Fatalf("Release of an expired lease nobody took: %v", err)
		}
		if info := leaseInfo(t, mustList(t, s), p); info.State != Free {
			t.Fatalf("listed %+v, want free", info)
		}
	})

	run("ChangeHandsOver", func(t *testing.T) {
		const p = 6
		a := mustAcquire(t, s, p, "host-a", h.d)
		b, err := s.Change(ctx, a, "host-b")
		if err != nil {
			t.Fatalf("Change: %v", err)
		}
		if b.Owner != "host-b" || b.Epoch != 2 || b.ID == a.ID || b.Partition != p {
			t.Fatalf("changed lease %+v, want host-b at epoch 2 with a new id", b)
		}
		if err := s.Renew(ctx, a); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Renew of the old lease: %v, want ErrLeaseLost", err)
		}
		if err := s.Renew(ctx, b); err != nil {
			t.Fatalf("Renew of the new lease: %v", err)
		}
		if info := leaseInfo(t, mustList(t, s), p); info.State != Held || info.Owner != "host-b" || info.Epoch != 2 {
			t.Fatalf("listed %+v, want held by host-b at epoch 2", info)
		}
		if _, err := s.Acquire(ctx, p, "host-c", h.d); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("Acquire after Change: %v, want ErrLeaseHeld", err)
		}
		if err := s.Release(ctx, b); err != nil {
			t.Fatalf("Release of the new lease: %v", err)
		}
	})

	run("OneOfManyConcurrentAcquirersWins", func(t *testing.T) {
		const p, n = 7, 8
		var wg sync.WaitGroup
		wins := make(chan *Lease, n)
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				l, err := s.Acquire(ctx, p, fmt.Sprintf("host-%d", i), h.d)
				if err != nil {
					errs <- err
					return
				}
				wins <- l
			})
		}
		wg.Wait()
		close(wins)
		close(errs)
		if len(wins) != 1 {
			t.Fatalf("%d acquirers won, want 1", len(wins))
		}
		for err := range errs {
			if !errors.Is(err, ErrLeaseHeld) {
				t.Fatalf("a loser got %v, want ErrLeaseHeld", err)
			}
		}
		w := <-wins
		if info := leaseInfo(t, mustList(t, s), p); info.Owner != w.Owner || info.Epoch != w.Epoch || info.State != Held {
			t.Fatalf("listed %+v, want the winner %+v", info, w)
		}
	})

	run("HostRecords", func(t *testing.T) {
		id := "host/ü 1"
		exp := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
		in := &Host{ID: id, Intents: []Intent{{Partition: 9, Serial: 4}, {Partition: 3, Serial: 5}},
			Expires: map[int]time.Time{8: exp}}
		if err := s.PutHost(ctx, in); err != nil {
			t.Fatalf("PutHost: %v", err)
		}
		snap := mustList(t, s)
		got := hostRecord(snap, id)
		if got == nil {
			t.Fatalf("host %q not listed in %+v", id, snap.Hosts)
		}
		if d := got.Heartbeat.Sub(snap.Time).Abs(); d > h.heartbeatSlack {
			t.Fatalf("heartbeat %v is %v from the store's time %v", got.Heartbeat, d, snap.Time)
		}
		want := []Intent{{Partition: 3, Serial: 5}, {Partition: 9, Serial: 4}}
		if fmt.Sprint(got.Intents) != fmt.Sprint(want) || !got.Expires[8].Equal(exp) {
			t.Fatalf("listed %+v, want intents %v and expiry %v for partition 8", got, want, exp)
		}
		if err := s.PutHost(ctx, &Host{ID: id}); err != nil {
			t.Fatalf("PutHost again: %v", err)
		}
		if got := hostRecord(mustList(t, s), id); got == nil || len(got.Intents) != 0 {
			t.Fatalf("after replacing, listed %+v, want no intents", got)
		}
		if err := s.DeleteHost(ctx, id); err != nil {
			t.Fatalf("DeleteHost: %v", err)
		}
		if got := hostRecord(mustList(t, s), id); got != nil {
			t.Fatalf("deleted host still listed: %+v", got)
		}
		if err := s.DeleteHost(ctx, id); err != nil {
			t.Fatalf("DeleteHost of a missing record: %v", err)
		}
	})

	run("BadArguments", func(t *testing.T) {
		if _, err := s.Acquire(ctx, -1, "host-a", h.d); !errors.Is(err, core.ErrInvalidInput) {
			t.Fatalf("negative partition: %v", err)
		}
		if _, err := s.Acquire(ctx, 10, "", h.d); !errors.Is(err, core.ErrInvalidInput) {
			t.Fatalf("empty owner: %v", err)
		}
		if _, err := s.Acquire(ctx, 10, "host-a", 0); !errors.Is(err, core.ErrInvalidInput) {
			t.Fatalf("zero duration: %v", err)
		}
		if err := s.Renew(ctx, &Lease{Partition: 10}); !errors.Is(err, core.ErrInvalidInput) {
			t.Fatalf("lease without id: %v", err)
		}
		if err := s.PutHost(ctx, &Host{}); !errors.Is(err, core.ErrInvalidInput) {
			t.Fatalf("host without id: %v", err)
		}
	})
}

func mustAcquire(t *testing.T, s Store, p int, owner string, d time.Duration) *Lease {
	t.Helper()
	l, err := s.Acquire(context.Background(), p, owner, d)
	if err != nil {
		t.Fatalf("Acquire(%d, %s): %v", p, owner, err)
	}
	return l
}

func mustList(t *testing.T, s Store) *Snapshot {
	t.Helper()
	snap, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return snap
}

func leaseInfo(t *testing.T, snap *Snapshot, p int) Info {
	t.Helper()
	for _, l := range snap.Leases {
		if l.Partition == p {
			return l
		}
	}
	t.Fatalf("partition %d not listed in %+v", p, snap.Leases)
	return Info{}
}

func hostRecord(snap *Snapshot, id string) *Host {
	for i := range snap.Hosts {
		if snap.Hosts[i].ID == id {
			return &snap.Hosts[i]
		}
	}
	return nil
}
