package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
)

const converge = 30 * time.Second // generous: the suite shares 2 cores

func TestThreeHostsConverge(t *testing.T) {
	store := leases.NewMemoryStore()
	c := newCluster(t, store, 16)
	for i := range 3 {
		c.start(fmt.Sprintf("host-%d", i))
	}
	c.awaitBalance(converge)
	// The leases say the same as the handlers.
	snap, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range snap.Leases {
		if l.State != leases.Held {
			t.Fatalf("partition %d is %s", l.Partition, l.State)
		}
		var owner *testHost
		for _, h := range c.hosts {
			if slices.Contains(h.m.Owned(), l.Partition) {
				owner = h
			}
		}
		if owner == nil || owner.id != l.Owner {
			t.Fatalf("partition %d leased by %s, run by %v", l.Partition, l.Owner, owner)
		}
	}
	for _, h := range c.hosts {
		if !h.m.Ready() {
			t.Fatalf("%s not ready", h.id)
		}
	}
}

func TestJoiningHostGetsItsShareByHandOver(t *testing.T) {
	c := newCluster(t, leases.NewMemoryStore(), 16)
	for i := range 3 {
		c.start(fmt.Sprintf("host-%d", i))
	}
	c.awaitBalance(converge)
	before := map[string]Stats{}
	for _, h := range c.hosts {
		before[h.id] = h.m.Stats()
	}
	joined := c.start("host-3")
	c.awaitBalance(converge)
	if n := len(joined.m.Owned()); n != 4 {
		t.Fatalf("the new host owns %d partitions, want 4:\n%s", n, c.describe())
	}
	var handedOver int64
	for _, h := range c.hosts[:3] {
		s := h.m.Stats()
		handedOver += s.HandedOver - before[h.id].HandedOver
		if s.Lost != 0 {
			t.Fatalf("%s lost partitions during a hand-over: %+v", h.id, s)
		}
	}
	if handedOver != 4 {
		t.Fatalf("others handed over %d partitions, want 4:\n%s", handedOver, c.describe())
	}
}

func TestStoppedHostsPartitionsMove(t *testing.T) {
	store := leases.NewMemoryStore()
	c := newCluster(t, store, 16)
	for i := range 3 {
		c.start(fmt.Sprintf("host-%d", i))
	}
	c.awaitBalance(converge)
	leaving := c.hosts[1]
	had, before := len(leaving.m.Owned()), leaving.m.Stats()
	leaving.stop(t)
	s := leaving.m.Stats()
	if s.Released-before.Released != int64(had) || s.Lost != 0 {
		t.Fatalf("stopped host released %d and lost %d, want %d released", s.Released-before.Released, s.Lost, had)
	}
	// Everything it had is free at once, and its record is gone.
	snap, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range snap.Leases {
		if l.Owner == leaving.id && l.State != leases.Free {
			t.Fatalf("partition %d of the stopped host is %s", l.Partition, l.State)
		}
	}
	for _, h := range snap.Hosts {
		if h.ID == leaving.id {
			t.Fatalf("the stopped host's record is still there")
		}
	}
	c.awaitBalance(converge)
}

func TestFailingStoreStopsProcessingBeforeExpiry(t *testing.T) {
	for _, mode := range []string{"errors", "hangs"} {
		t.Run(mode, func(t *testing.T) {
			store := leases.NewMemoryStore()
			c := newCluster(t, store, 16)
			// The sick host must stop before its leases expire even if the
			// process stalls when it should: a wider safety margin than
			// LeaseDuration/6 keeps the check meaningful on a loaded
			// machine (the sick host stops 1.4s after its last renewal;
			// the leases expire after 4s).
			c.timings = func(t *timings) { t.margin = 2500 * time.Millisecond }
			for i := range 3 {
				c.start(fmt.Sprintf("host-%d", i))
			}
			c.awaitBalance(converge)
			sick := c.hosts[0]
			had, lost := len(sick.m.Owned()), sick.m.Stats().Lost
			if mode == "errors" {
				sick.store.fail.Store(true)
			} else {
				sick.store.hang.Store(true)
			}
			// The others take over only after the leases expire, and the
			// checker fails the test if they start before the sick host
			// stopped.
			eventually(t, converge, "the healthy hosts share all partitions", func() bool {
				return c.balanced(c.hosts[1], c.hosts[2])
			})
			if r := sick.h.runningNow(); len(r) != 0 {
				t.Fatalf("the sick host still runs %v", r)
			}
			if s := sick.m.Stats(); s.Lost-lost != int64(had) || s.RenewFailures == 0 || s.StorageErrors == 0 {
				t.Fatalf("sick host's stats %+v, want %d lost and failures counted", s, had)
			}
			// Healed, it rejoins and gets its share back.
			sick.store.fail.Store(false)
			sick.store.hang.Store(false)
			c.awaitBalance(converge)
		})
	}
}

func TestSixtyFourPartitionsFiveHosts(t *testing.T) {
	c := newCluster(t, leases.NewMemoryStore(), 64)
	for i := range 5 {
		c.start(fmt.Sprintf("host-%d", i))
	}
	c.awaitBalance(converge)
	c.hosts[4].stop(t)
	c.awaitBalance(converge)
	c.start("host-5")
	c.awaitBalance(converge)
}

func TestFailedOpenReleasesAndRetries(t *testing.T) {
	store := leases.NewMemoryStore()
	c := newCluster(t, store, 4)
	var mu sync.Mutex
	failures := 0
	h := c.start("host-0", func(h *testHost) {
		h.h.failOpen = func(p int) error {
			mu.Lock()
			defer mu.Unlock()
			if p == 2 && failures < 2 {
				failures++
				return errors.New("cannot open")
			}
			return nil
		}
	})
	c.awaitBalance(converge)
	if s := h.m.Stats(); s.OpenFailures != 2 || s.Acquired != 4 {
		t.Fatalf("stats %+v, want 2 open failures and 4 acquisitions", s)
	}
	// Each failed open gave the lease back: three leases of partition 2.
	snap, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range snap.Leases {
		if l.Partition == 2 && l.Epoch != 3 {
			t.Fatalf("partition 2 at epoch %d, want 3", l.Epoch)
		}
	}
}

func TestTakenLeaseStopsThePartitionAtOnce(t *testing.T) {
	store := leases.NewMemoryStore()
	c := newCluster(t, store, 2)
	h := c.start("host-0")
	c.awaitBalance(converge)
	// An operator breaks the lease and someone else takes it.
	store.Break(1)
	if _, err := store.Acquire(context.Background(), 1, "intruder", time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, "the partition stops", func() bool {
		return !slices.Contains(h.h.runningNow(), 1)
	})
	if s := h.m.Stats(); s.Lost != 1 || s.RenewFailures != 1 {
		t.Fatalf("stats %+v, want 1 lost after 1 failed renewal", s)
	}
	if o := h.m.Owned(); fmt.Sprint(o) != "[0]" {
		t.Fatalf("owned %v, want [0]", o)
	}
}

func TestDrainIsBoundedByDrainTimeout(t *testing.T) {
	c := newCluster(t, leases.NewMemoryStore(), 4)
	// Handlers that would drain for a minute are cut at DrainTimeout.
	slow := func(h *testHost) { h.h.drain = time.Minute }
	c.start("host-0", slow)
	c.awaitBalance(converge)
	c.start("host-1", slow)
	c.awaitBalance(converge)
	c.hosts[0].stop(t)
	c.awaitBalance(converge)
}

// TestIdleStorageOperations counts the store calls of an idle host that
// owns 16 partitions. The timings are the defaults divided by 50 (the lease
// aside, which idle costs do not depend on), so the figure per scaled
// minute is the figure per minute with the defaults. Counts, not times, are
// checked: the steady host scans every SteadyScanInterval, not every
// AcquireInterval.
func TestIdleStorageOperations(t *testing.T) {
	const scale = 50
	c := newCluster(t, leases.NewMemoryStore(), 16)
	c.options = func(o *Options) {
		o.RenewInterval, o.AcquireInterval = DefaultRenewInterval/scale, DefaultAcquireInterval/scale
	}
	h := c.start("host-0")
	c.awaitBalance(converge)
	eventually(t, converge, "the first renewals", func() bool { return h.store.counts()["renew"] >= 16 })
	before, scans := h.store.counts(), h.m.Stats().Scans
	start := time.Now()
	eventually(t, converge, "the next 32 renewals", func() bool { return h.store.counts()["renew"] >= before["renew"]+32 })
	elapsed := time.Since(start)
	after := h.store.counts()
	perMinute := map[string]float64{}
	total := 0.0
	for op, n := range after {
		d := float64(n-before[op]) * float64(time.Minute) / float64(elapsed*scale)
		perMinute[op] = d
		total += d
	}
	t.Logf("idle host with 16 partitions, per minute at the default timings: %.0f operations %v", total, perMinute)
	for _, op := range []string{"acquire", "release", "change", "delete-host"} {
		if perMinute[op] != 0 {
			t.Fatalf("an idle host called %s: %v", op, perMinute)
		}
	}
	// Two rounds of renewals at RenewInterval take about two
	// SteadyScanIntervals' worth of ten scans each; AcquireInterval would
	// have made 50.
	if n := h.m.Stats().Scans - scans; n > int64(2*DefaultRenewInterval/(DefaultSteadyScans*DefaultAcquireInterval))+4 {
		t.Fatalf("a steady host scanned %d times during two renewal rounds: %v", n, perMinute)
	}
}

// TestHostsWithPeersAreNeverSteady: next to another live host, a host scans
// every AcquireInterval, so that partitions a stopping host releases are
// taken at once (DESIGN §6), not at a slow steady scan. The steady interval
// is made far longer than the test may run: only AcquireInterval scans can
// balance it in time.
func TestHostsWithPeersAreNeverSteady(t *testing.T) {
	c := newCluster(t, leases.NewMemoryStore(), 8)
	c.options = func(o *Options) {
		o.RenewInterval, o.AcquireInterval = DefaultRenewInterval/50, DefaultAcquireInterval/50
		o.SteadyScanInterval = time.Hour
	}
	a := c.start("host-a")
	b := c.start("host-b")
	c.awaitBalance(converge)
	// Two rounds of renewals of its 4 leases take 2 RenewIntervals, about
	// 50 AcquireIntervals; a steady host would scan only when a peer's
	// heartbeat looks late.
	for _, h := range []*testHost{a, b} {
		renewals, scans := h.store.counts()["renew"], h.m.Stats().Scans
		eventually(t, converge, "two rounds of renewals of "+h.id, func() bool { return h.store.counts()["renew"] >= renewals+8 })
		if n := h.m.Stats().Scans - scans; n < 20 {
			t.Fatalf("%s scanned %d times in two renewal rounds next to a live peer; want about 50", h.id, n)
		}
	}
	b.stop(t)
	c.awaitBalance(converge)
	if got := len(a.m.Owned()); got != 8 {
		t.Fatalf("host-a owns %d partitions after host-b stopped, want 8", got)
	}
}

// TestDefaultTimings pins the defaults the operations guide documents, and
// checks the rule that keeps fail-over within LeaseDuration +
// AcquireInterval: a steady host scans again before a host that died just
// after its last renewal can lose its leases.
func TestDefaultTimings(t *testing.T) {
	o, err := Options{Store: leases.NewMemoryStore(), HostID: "h", Partitions: 16}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tm := newTimings(o)
	got := fmt.Sprint(tm.lease, tm.renew, tm.acquire, tm.steady, tm.late, tm.retry, tm.margin, tm.op)
	if want := "1m0s 40s 1.5s 15s 43s 2s 10s 5s"; got != want {
		t.Fatalf("lease renew acquire steady late retry margin op = %s, want %s", got, want)
	}
	for name, o := range map[string]Options{
		"defaults":         {},
		"short lease":      {LeaseDuration: 15 * time.Second, RenewInterval: 4 * time.Second, AcquireInterval: time.Second},
		"tests":            {LeaseDuration: 4 * time.Second, RenewInterval: 200 * time.Millisecond, AcquireInterval: 30 * time.Millisecond, DrainTimeout: 100 * time.Millisecond},
		"slow steady scan": {SteadyScanInterval: time.Minute},
		"fast steady scan": {AcquireInterval: 2 * time.Second, SteadyScanInterval: time.Second},
	} {
		o.Store, o.HostID, o.Partitions = leases.NewMemoryStore(), "h", 4
		o, err := o.withDefaults()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tm := newTimings(o)
		if tm.steady < tm.acquire {
			t.Errorf("%s: steady scans every %s, more often than every AcquireInterval (%s)", name, tm.steady, tm.acquire)
		}
		if tm.steady > tm.acquire && tm.late+tm.steady+tm.acquire > tm.lease {
			t.Errorf("%s: a late host is noticed up to %s after its last heartbeat, its lease lasts %s", name, tm.late+tm.steady+tm.acquire, tm.lease)
		}
		if tm.renew+tm.retry+tm.drain+tm.margin > tm.lease {
			t.Errorf("%s: no retry of a failed renewal fits before the partition must be given up", name)
		}
	}
}

func TestOptions(t *testing.T) {
	store := leases.NewMemoryStore()
	m, err := New(Options{Store: store, HostID: "h", Partitions: 16})
	if err != nil {
		t.Fatal(err)
	}
	if m.o.LeaseDuration != DefaultLeaseDuration || m.o.RenewInterval != DefaultRenewInterval ||
		m.o.AcquireInterval != DefaultAcquireInterval || m.o.DrainTimeout != DefaultDrainTimeout {
		t.Fatalf("defaults not applied: %+v", m.o)
	}
	for name, o := range map[string]Options{
		"no store":               {HostID: "h", Partitions: 1},
		"no host":                {Store: store, Partitions: 1},
		"no partitions":          {Store: store, HostID: "h"},
		"too many":               {Store: store, HostID: "h", Partitions: MaxPartitions + 1},
		"negative":               {Store: store, HostID: "h", Partitions: 1, DrainTimeout: -1},
		"renew too slow":         {Store: store, HostID: "h", Partitions: 1, RenewInterval: 50 * time.Second},
		"negative steady scan":   {Store: store, HostID: "h", Partitions: 1, SteadyScanInterval: -time.Second},
		"scan slower than lease": {Store: store, HostID: "h", Partitions: 1, AcquireInterval: 2 * time.Minute},
		"blob lease too short": {Store: leases.NewBlobStore(nil), HostID: "h", Partitions: 1,
			LeaseDuration: 10 * time.Second, RenewInterval: time.Second, DrainTimeout: time.Second, AcquireInterval: time.Second},
	} {
		if _, err := New(o); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("%s: New = %v, want ErrInvalidInput", name, err)
		}
	}
}

func TestRunTwiceFails(t *testing.T) {
	c := newCluster(t, leases.NewMemoryStore(), 1)
	h := c.start("host-0")
	c.awaitBalance(converge)
	if err := h.m.Run(context.Background(), h.h); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("second Run: %v", err)
	}
}

func TestReadyAfterTheFirstScan(t *testing.T) {
	c := newCluster(t, leases.NewMemoryStore(), 2)
	h := c.start("host-0", func(h *testHost) { h.store.fail.Store(true) })
	eventually(t, converge, "a few failed scans", func() bool { return h.store.counts()["list"] >= 3 })
	if h.m.Ready() || len(h.m.Owned()) != 0 {
		t.Fatalf("ready %v, owns %v, although no scan succeeded", h.m.Ready(), h.m.Owned())
	}
	h.store.fail.Store(false)
	c.awaitBalance(converge)
	if !h.m.Ready() {
		t.Fatal("not ready after scans succeeded")
	}
}

func TestStaleHostRecordsAreDeleted(t *testing.T) {
	store := leases.NewMemoryStore()
	ctx := context.Background()
	store.SetClock(func() time.Time { return time.Now().Add(-time.Hour) })
	if err := store.PutHost(ctx, &leases.Host{ID: "long-gone"}); err != nil {
		t.Fatal(err)
	}
	store.SetClock(time.Now)
	c := newCluster(t, store, 2)
	c.start("host-0")
	c.awaitBalance(converge)
	eventually(t, converge, "the stale record is deleted", func() bool {
		snap, err := store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(snap.Hosts) == 1 && snap.Hosts[0].ID == "host-0"
	})
}
