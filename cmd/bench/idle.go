package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/core"
)

// IdleResult is what the idle mode measured: the memory of hosts that keep
// n instances cached while they wait.
type IdleResult struct {
	Provider  string `json:"provider"`
	Hosts     int    `json:"hosts"`
	Instances int    `json:"instances"`
	// Cached is how many instances the hosts hold in their executor caches.
	Cached int `json:"cached"`
	// In process: the Go heap in use after a collection, before the
	// instances started and with them cached (the in-memory provider's own
	// copy of the instances is part of it).
	HeapBeforeMiB float64 `json:"heapBeforeMiB,omitempty"`
	HeapAfterMiB  float64 `json:"heapAfterMiB,omitempty"`
	// Per process: resident memory before and with the instances cached.
	Processes []IdleProcess `json:"processes"`
	Load1     float64       `json:"load1"`
}

// IdleProcess is one host's resident memory.
type IdleProcess struct {
	Name      string  `json:"name"`
	RSSBefore float64 `json:"rssBeforeMiB"`
	RSSAfter  float64 `json:"rssAfterMiB"`
	PeakRSS   float64 `json:"peakRssMiB"`
}

func heapInUse() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// idle starts n instances that wait for an event nobody raises, waits until
// the hosts have cached all of them, and measures the hosts' memory.
func (e *env) idle(ctx context.Context, n int, prog *progress) (*IdleResult, error) {
	res := &IdleResult{Provider: e.cfg.Provider, Hosts: e.cfg.Hosts, Instances: n, Load1: loadAverage()}
	if e.rt != nil {
		res.HeapBeforeMiB = heapInUse()
	}
	before, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	var next, started atomic.Int64
	errs := make(chan error, e.cfg.Starters)
	prog.label = "idle"
	prog.begin(n, &started)
	var wg sync.WaitGroup
	for range min(n, e.cfg.Starters) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := e.client.Start(ctx, "CollectEvents", core.WithInput(1)); err != nil {
					errs <- fmt.Errorf("start CollectEvents: %w", err)
					return
				}
				started.Add(1)
			}
		})
	}
	wg.Wait()
	prog.end()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	// Wait until every instance has run its first episode and stayed cached.
	deadline := time.Now().Add(e.cfg.Timeout)
	var after *snapshot
	for {
		if after, err = e.snapshot(ctx); err != nil {
			return nil, err
		}
		if after.runtime.Episodes-before.runtime.Episodes >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d instances started within %s", after.runtime.Episodes-before.runtime.Episodes, n, e.cfg.Timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if e.rt != nil {
		res.HeapAfterMiB = heapInUse()
		if after, err = e.snapshot(ctx); err != nil {
			return nil, err
		}
	}
	res.Cached = after.runtime.CachedInstances
	for name, u := range after.usage {
		if name == "azurite" || name == "bench (client)" {
			continue
		}
		res.Processes = append(res.Processes, IdleProcess{Name: name, RSSBefore: float64(before.usage[name].RSS) / (1 << 20),
			RSSAfter: float64(u.RSS) / (1 << 20), PeakRSS: float64(u.PeakRSS) / (1 << 20)})
	}
	return res, nil
}

func writeIdle(w io.Writer, r *IdleResult, format string) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "idle instances: %d started, %d cached, provider %s, hosts %d, load average %.2f\n",
		r.Instances, r.Cached, r.Provider, r.Hosts, r.Load1)
	if r.HeapAfterMiB > 0 {
		fmt.Fprintf(w, "  Go heap in use: %.1f MiB before, %.1f MiB with the instances (%.1f KiB each)\n",
			r.HeapBeforeMiB, r.HeapAfterMiB, (r.HeapAfterMiB-r.HeapBeforeMiB)*1024/float64(max(r.Instances, 1)))
	}
	for _, p := range r.Processes {
		fmt.Fprintf(w, "  %-24s RSS %.1f MiB before, %.1f MiB with the instances, peak %.1f MiB\n", p.Name, p.RSSBefore, p.RSSAfter, p.PeakRSS)
	}
	return nil
}
