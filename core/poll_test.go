package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
)

// A start from a client in the host's process wakes its partition, which
// fetches it at once; it does not restart the polling ramp that serves
// senders in other processes (on Azurite each empty dequeue of that ramp
// costs several inserts' worth of the storage's time). Ten starts cost
// about ten fetches, not the dozens a ramp after each would add.
func TestLocalStartsKeepThePollingSchedule(t *testing.T) {
	ctx := testContext(t)
	store := newStore(t, 1)
	reg := core.NewRegistry()
	// Activities that take a while leave time for a ramp between starts.
	if err := samples.RegisterWithOptions(reg, samples.Options{Latency: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rt, err := core.NewRuntime(core.Options{Provider: store, Registry: reg, PollMinInterval: time.Millisecond,
		PollMaxInterval: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, rt) })
	// The idle ramp 1, 2, 4, … 1024 ms, then 2 s: after 12 empty fetches
	// the next scheduled one is 2 s away.
	waitFor(ctx, t, "the polling to back off", func() bool { return store.Stats().FetchMessages >= 12 })
	before := store.Stats().FetchMessages
	client := rt.Client()
	const n = 10
	for range n {
		id, err := client.Start(ctx, samples.HelloSequence)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.WaitForCompletion(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := store.Stats().FetchMessages - before; got > n+n/2 {
		t.Fatalf("%d fetches for %d starts from this process; want about one each", got, n)
	}
}
