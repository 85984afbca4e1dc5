package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/azdurable/azdurable/leases"
	"github.com/azdurable/azdurable/test/azurite"
)

func TestMain(m *testing.M) { azurite.Main(m) }

// TestManagersOnBlobLeasesAzurite runs three managers on Blob leases in
// Azurite: they share 8 partitions evenly, one stops and the others take its
// partitions over from released (not expired) leases, and at the end every
// lease is free and every host record gone.
func TestManagersOnBlobLeasesAzurite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cont, err := container.NewClientFromConnectionString(azurite.ForTest(t), fmt.Sprintf("partition-%08x", rand.Uint32()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cont.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cont.Delete(context.WithoutCancel(ctx), nil) })
	store := leases.NewBlobStore(cont)

	c := newCluster(t, store, 8)
	// Azure's shortest lease; scans fast so that the test is quick.
	c.options = func(o *Options) {
		o.LeaseDuration, o.RenewInterval, o.AcquireInterval, o.DrainTimeout = 15*time.Second, 4*time.Second, 100*time.Millisecond, 500*time.Millisecond
	}
	for i := range 3 {
		c.start(fmt.Sprintf("host-%d", i))
	}
	c.awaitBalance(time.Minute)

	snap, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Leases) != 8 || len(snap.Hosts) != 3 {
		t.Fatalf("listed %d leases and %d hosts, want 8 and 3", len(snap.Leases), len(snap.Hosts))
	}
	owner := map[int]string{}
	for _, h := range c.hosts {
		for _, p := range h.m.Owned() {
			owner[p] = h.id
		}
	}
	for _, l := range snap.Leases {
		if l.State != leases.Held || l.Owner != owner[l.Partition] || l.Epoch < 1 || !l.Expires.After(snap.Time) {
			t.Fatalf("partition %d listed %+v, run by %s", l.Partition, l, owner[l.Partition])
		}
	}

	leaving := c.hosts[2]
	leaving.stop(t)
	c.awaitBalance(time.Minute)
	// Store calls may time out on a loaded machine and are retried; a
	// partition must not be lost for it.
	for _, h := range c.running() {
		if s := h.m.Stats(); s.Lost != 0 {
			t.Fatalf("%s lost partitions: %+v", h.id, s)
		}
	}

	for _, h := range c.running() {
		h.stop(t)
	}
	snap, err = store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range snap.Leases {
		if l.State != leases.Free {
			t.Fatalf("after every host stopped, partition %d is %s", l.Partition, l.State)
		}
	}
	if len(snap.Hosts) != 0 {
		t.Fatalf("host records left: %+v", snap.Hosts)
	}
}
