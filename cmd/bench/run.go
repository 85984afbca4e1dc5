package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
)

// phase is one pass of a workload: the units started and how each ended.
type phase struct {
	units   []unit
	ids     []string
	started []time.Time
	// latency of each unit: start call to the instance's completion time.
	latency []time.Duration
	// end is the latest completion time.
	end  time.Time
	done atomic.Int64
}

// runPhase starts the units and waits until all have completed. With
// oneAtATime it starts each unit after the one before has completed.
func (e *env) runPhase(ctx context.Context, units []unit, oneAtATime bool, prog *progress) (*phase, error) {
	ph := &phase{units: units, ids: make([]string, len(units)), started: make([]time.Time, len(units)),
		latency: make([]time.Duration, len(units))}
	prog.begin(len(units), &ph.done)
	defer prog.end()
	if oneAtATime {
		for i := range units {
			if err := e.startUnit(ctx, ph, i); err != nil {
				return nil, err
			}
			st, err := e.waitOne(ctx, ph.ids[i])
			if err != nil {
				return nil, err
			}
			ph.record(i, st)
		}
		return ph, nil
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(len(units), e.cfg.Starters) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(units) || ctx.Err() != nil {
					return
				}
				if err := e.startUnit(ctx, ph, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if e.rt == nil {
		if err := e.waitAll(ctx, ph); err != nil {
			return nil, err
		}
		return ph, nil
	}
	// In process the runtime tells its client of completions: no polling.
	states := make([]*core.InstanceState, len(units))
	for i := range units {
		wg.Go(func() {
			st, err := e.waitOne(ctx, ph.ids[i])
			if err != nil {
				cancel(err)
				return
			}
			states[i] = st
			ph.done.Add(1)
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	ph.done.Store(0)
	for i, st := range states {
		ph.record(i, st)
	}
	return ph, nil
}

// startUnit starts unit i and raises its events.
func (e *env) startUnit(ctx context.Context, ph *phase, i int) error {
	u := ph.units[i]
	ph.started[i] = time.Now()
	id, err := e.client.Start(ctx, u.orchestration, core.WithInput(u.input))
	if err != nil {
		return fmt.Errorf("start %s: %w", u.orchestration, err)
	}
	ph.ids[i] = id
	if len(u.events) == 0 {
		return nil
	}
	// An event needs the instance to exist.
	waiter := e.observer
	if e.rt != nil {
		waiter = e.client
	}
	wctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	_, err = waiter.WaitForStart(wctx, id)
	cancel()
	if err != nil {
		return fmt.Errorf("wait for %s to start: %w", id, err)
	}
	// Raise the events from a few goroutines: their order does not matter.
	var next atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range min(8, len(u.events)) {
		wg.Go(func() {
			for {
				j := int(next.Add(1) - 1)
				if j >= len(u.events) {
					return
				}
				if err := e.client.RaiseEvent(ctx, id, samples.CollectEvent, u.events[j]); err != nil {
					errs <- fmt.Errorf("raise event %d on %s: %w", j, id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (ph *phase) record(i int, st *core.InstanceState) {
	ph.latency[i] = st.CompletedAt.Sub(ph.started[i])
	if st.CompletedAt.After(ph.end) {
		ph.end = st.CompletedAt
	}
	ph.done.Add(1)
}

// waitOne waits for one instance: through the runtime's completion
// notices when the host runs in process, else by polling.
func (e *env) waitOne(ctx context.Context, id string) (*core.InstanceState, error) {
	c := e.observer
	if e.rt != nil {
		c = e.client
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	st, err := c.WaitForCompletion(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.Status != core.StatusCompleted {
		return nil, fmt.Errorf("instance %s ended %s: %v", id, st.Status, st.Failure)
	}
	return st, nil
}

// waitAll polls (for worker processes) the observer's query of completed and failed instances
// until every unit of the phase has ended.
func (e *env) waitAll(ctx context.Context, ph *phase) error {
	index := make(map[string]int, len(ph.ids))
	for i, id := range ph.ids {
		index[id] = i
	}
	seen := make([]bool, len(ph.ids))
	from := slices.MinFunc(ph.started, func(a, b time.Time) int { return a.Compare(b) }).Add(-time.Second)
	deadline := time.Now().Add(e.cfg.Timeout)
	interval := e.cfg.PollInterval
	for int(ph.done.Load()) < len(ph.ids) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d instances ended within %s", ph.done.Load(), len(ph.ids), e.cfg.Timeout)
		}
		q := core.InstanceQuery{Statuses: []core.Status{core.StatusCompleted, core.StatusFailed, core.StatusTerminated},
			CreatedFrom: from, PageSize: 1000}
		for {
			page, err := e.observer.Query(ctx, q)
			if err != nil {
				return fmt.Errorf("poll completions: %w", err)
			}
			for _, st := range page.Instances {
				i, ok := index[st.InstanceID]
				if !ok || seen[i] {
					continue
				}
				if st.Status != core.StatusCompleted {
					return fmt.Errorf("instance %s (%s) ended %s: %v", st.InstanceID, ph.units[i].orchestration, st.Status, st.Failure)
				}
				seen[i] = true
				ph.record(i, st)
			}
			if page.Continuation == "" {
				break
			}
			q.Continuation = page.Continuation
		}
		if int(ph.done.Load()) == len(ph.ids) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return nil
}

// verify checks every unit's output against what it should return.
func (e *env) verify(ctx context.Context, ph *phase) error {
	for i, id := range ph.ids {
		st, err := e.observer.GetInstance(ctx, id, true)
		if err != nil {
			return err
		}
		want, err := json.Marshal(ph.units[i].want)
		if err != nil {
			return err
		}
		got, wantV := any(nil), any(nil)
		if err := json.Unmarshal(st.Output, &got); err != nil {
			return fmt.Errorf("instance %s: output: %w", id, err)
		}
		if err := json.Unmarshal(want, &wantV); err != nil {
			return err
		}
		if !jsonEqual(got, wantV) {
			return fmt.Errorf("instance %s (%s): output %.200s, want %.200s", id, ph.units[i].orchestration, st.Output, want)
		}
	}
	return nil
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// run runs a workload: warm-up (not counted), an idle sample, then the
// measured phase, and returns the result.
func (e *env) run(ctx context.Context, w *workload, prog *progress) (*Result, error) {
	cfg := e.cfg
	rnd := newRand(cfg.Seed)
	po := planOptions{Timer: cfg.Timer, Payload: cfg.Payload, InProcess: cfg.Hosts == 0}
	res := &Result{Workload: w.name, Provider: cfg.Provider, Hosts: cfg.Hosts, Offload: cfg.Offload,
		Size: cfg.N, Latency: cfg.Latency, Seed: cfg.Seed, Partitions: cfg.Partitions, LoadBefore: loadAverage(),
		Machine: fmt.Sprintf("%s, %d cores", cpuModel(), runtime.NumCPU())}

	if cfg.Warmup > 0 {
		warm, err := w.plan(cfg.Warmup, po, rnd)
		if err != nil {
			return nil, err
		}
		prog.label = "warm-up"
		if _, err := e.runPhase(ctx, warm, cfg.Latency, prog); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	if cfg.IdleSample > 0 {
		a, err := e.snapshot(ctx)
		if err != nil {
			return nil, err
		}
		time.Sleep(cfg.IdleSample)
		b, err := e.snapshot(ctx)
		if err != nil {
			return nil, err
		}
		res.IdleOpsPerSec = perSecond(b.host.sub(a.host), b.at.Sub(a.at))
	}

	units, err := w.plan(cfg.N, po, rnd)
	if err != nil {
		return nil, err
	}
	before, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	prog.label = w.name
	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	ph, err := e.runPhase(ctx, units, cfg.Latency, prog)
	stopProfile()
	if err != nil {
		return nil, err
	}
	after, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.verify(ctx, ph); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	res.fill(ph, before, after)
	res.LoadAfter = loadAverage()
	return res, nil
}

func perSecond(c counts, d time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range c {
		out[k] = float64(v) / d.Seconds()
	}
	return out
}

// newRand is the source of a run's planned inputs.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b9)) }

var errInterrupted = errors.New("interrupted")
