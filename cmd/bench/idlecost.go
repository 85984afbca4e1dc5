package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
)

// IdleCostResult is what the idlecost mode measured: the storage requests
// of hosts that have nothing to do, and how long a message sent by a client
// outside the hosts waits for an idle partition to pick it up.
type IdleCostResult struct {
	Provider   string `json:"provider"`
	Hosts      int    `json:"hosts"`
	Partitions int    `json:"partitions"`
	// WindowSeconds is how long the idle traffic was counted, after
	// SettleSeconds of idleness that were not counted.
	SettleSeconds float64 `json:"settleSeconds"`
	WindowSeconds float64 `json:"windowSeconds"`
	// OpsPerMin are the hosts' storage requests per minute, by kind;
	// queue.get-empty is part of queue.get and not counted again in Total.
	OpsPerMin   map[string]float64 `json:"opsPerMin"`
	TotalPerMin float64            `json:"totalPerMin"`
	// Pickup: n instances of a one-episode orchestration started one at a
	// time, at random moments, by a client that is not in any host. The
	// latency runs from the start's enqueue returning to the creation time
	// the host gives the instance in its first episode, on the same clock:
	// the wait for the poll, the dequeue and the episode's start.
	Pickups     int     `json:"pickups"`
	PickupP50Ms float64 `json:"pickupP50Ms"`
	PickupP90Ms float64 `json:"pickupP90Ms"`
	PickupP99Ms float64 `json:"pickupP99Ms"`
	PickupMaxMs float64 `json:"pickupMaxMs"`
	Load1       float64 `json:"load1"`
}

// pickupGap bounds the random pause between two pickup probes. Its lower
// end is longer than the climb of a partition's poll interval back to its
// maximum after a message, so that no probe finds its partition still
// polling fast after the probe before it.
var pickupGap = [2]time.Duration{1500 * time.Millisecond, 2500 * time.Millisecond}

// idleCost counts the hosts' storage requests while nothing happens, then
// measures the pickup latency of n starts sent from outside the hosts.
func (e *env) idleCost(ctx context.Context, n int, prog *progress) (*IdleCostResult, error) {
	cfg := e.cfg
	res := &IdleCostResult{Provider: cfg.Provider, Hosts: cfg.Hosts, Partitions: cfg.Partitions,
		SettleSeconds: cfg.IdleSettle.Seconds(), Load1: loadAverage()}
	if prog.w != nil {
		fmt.Fprintf(prog.w, "idle cost: settling %s, counting %s, then %d pickups\n", cfg.IdleSettle, cfg.IdleWindow, n)
	}
	if !sleepCtx(ctx, cfg.IdleSettle) {
		return nil, ctx.Err()
	}
	before, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if !sleepCtx(ctx, cfg.IdleWindow) {
		return nil, ctx.Err()
	}
	after, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	window := after.at.Sub(before.at)
	res.WindowSeconds = window.Seconds()
	res.OpsPerMin = map[string]float64{}
	for k, v := range after.host.sub(before.host) {
		res.OpsPerMin[k] = float64(v) * float64(time.Minute) / float64(window)
		if k != kindEmptyPoll {
			res.TotalPerMin += res.OpsPerMin[k]
		}
	}

	// A client of its own, outside every host, so that no start wakes a
	// partition in memory.
	client := core.NewClient(e.externalProvider())
	rng := rand.New(rand.NewPCG(cfg.Seed, 2))
	lat := make([]time.Duration, 0, n)
	var done atomic.Int64
	prog.label = "pickups"
	prog.begin(n, &done)
	defer prog.end()
	for range n {
		gap := pickupGap[0] + time.Duration(rng.Int64N(int64(pickupGap[1]-pickupGap[0])))
		if !sleepCtx(ctx, gap) {
			return nil, ctx.Err()
		}
		id, err := client.Start(ctx, samples.CollectEvents, core.WithInput(0))
		if err != nil {
			return nil, fmt.Errorf("start a pickup probe: %w", err)
		}
		sent := time.Now()
		wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		st, err := e.observer.WaitForCompletion(wctx, id)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("pickup probe %q: %w", id, err)
		}
		lat = append(lat, max(st.CreatedAt.Sub(sent), 0))
		done.Add(1)
	}
	slices.Sort(lat)
	res.Pickups = len(lat)
	res.PickupP50Ms, res.PickupP90Ms = ms(percentile(lat, 50)), ms(percentile(lat, 90))
	res.PickupP99Ms, res.PickupMaxMs = ms(percentile(lat, 99)), ms(lat[len(lat)-1])
	return res, nil
}

// kindEmptyPoll is the azprovider kind of a dequeue that found nothing; it
// is also counted as queue.get.
const kindEmptyPoll = "queue.get-empty"

// externalProvider is storage access that belongs to no host: the
// observer's provider on Azurite, the shared provider in memory.
func (e *env) externalProvider() core.Provider {
	if e.obsAz != nil {
		return e.obsAz
	}
	return e.mem
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeIdleCost(w io.Writer, r *IdleCostResult, format string) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "idle cost: provider %s, hosts %d, %d partitions, %.0f s counted after %.0f s idle, load average %.2f\n",
		r.Provider, r.Hosts, r.Partitions, r.WindowSeconds, r.SettleSeconds, r.Load1)
	for _, k := range slices.Sorted(maps.Keys(r.OpsPerMin)) {
		fmt.Fprintf(w, "  %-18s %8.1f /min\n", k, r.OpsPerMin[k])
	}
	fmt.Fprintf(w, "  %-18s %8.1f /min (without %s)\n", "total", r.TotalPerMin, kindEmptyPoll)
	fmt.Fprintf(w, "pickup of %d starts from an outside client: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		r.Pickups, r.PickupP50Ms, r.PickupP90Ms, r.PickupP99Ms, r.PickupMaxMs)
	return nil
}
