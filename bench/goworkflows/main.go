// Command goworkflows runs the bench workloads of cmd/bench on go-workflows
// (github.com/cschleiden/go-workflows), on its in-memory SQLite backend
// wrapped in monoprocess as go-workflows' own bench does, so that the
// in-memory figures of azdurable can be compared with a peer on the same
// machine in the same session. It is a module of its own: the azdurable
// module does not depend on go-workflows.
//
//	go run . -workload hello -n 1000
//	go run . -workload fanout -n 1000
//	go run . -workload chain -n 200
//	go run . -workload hello -n 200 -latency
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/monoprocess"
	"github.com/cschleiden/go-workflows/backend/sqlite"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
)

var cities = []string{"Tokyo", "Seattle", "London", "Cairo", "Lima"}

// HelloSequence greets five cities one activity after the other.
func HelloSequence(ctx workflow.Context) ([]string, error) {
	out := make([]string, 0, len(cities))
	for _, c := range cities {
		g, err := workflow.ExecuteActivity[string](ctx, workflow.DefaultActivityOptions, SayHello, c).Get(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// SayHello is HelloSequence's activity.
func SayHello(_ context.Context, name string) (string, error) { return "Hello, " + name + "!", nil }

// FanOutFanIn squares 1..n in parallel activities and sums the squares.
func FanOutFanIn(ctx workflow.Context, n int) (int64, error) {
	fs := make([]workflow.Future[int64], n)
	for i := range n {
		fs[i] = workflow.ExecuteActivity[int64](ctx, workflow.DefaultActivityOptions, Square, int64(i+1))
	}
	var sum int64
	for _, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// Square is FanOutFanIn's activity.
func Square(_ context.Context, x int64) (int64, error) { return x * x, nil }

// Chain calls n activities one after another.
func Chain(ctx workflow.Context, n int) (int64, error) {
	var v int64
	for range n {
		next, err := workflow.ExecuteActivity[int64](ctx, workflow.DefaultActivityOptions, Increment, v).Get(ctx)
		if err != nil {
			return 0, err
		}
		v = next
	}
	return v, nil
}

// Increment is Chain's activity.
func Increment(_ context.Context, x int64) (int64, error) { return x + 1, nil }

type nullHandler struct{}

func (nullHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (nullHandler) Handle(context.Context, slog.Record) error { return nil }
func (h nullHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h nullHandler) WithGroup(string) slog.Handler           { return h }

func main() {
	name := flag.String("workload", "hello", "hello, fanout or chain")
	n := flag.Int("n", 1000, "instances (hello), activities (fanout, chain)")
	latency := flag.Bool("latency", false, "start each instance after the one before has completed (hello)")
	warmup := flag.Int("warmup", -1, "size of the warm-up, not counted (-1: a tenth of -n)")
	cacheSize := flag.Int("cachesize", 128, "workflow executor cache size (go-workflows' bench default)")
	flag.Parse()
	if *warmup < 0 {
		*warmup = max(1, *n/10)
	}
	if err := run(*name, *n, *warmup, *latency, *cacheSize); err != nil {
		fmt.Fprintln(os.Stderr, "goworkflows:", err)
		os.Exit(1)
	}
}

func run(name string, n, warmup int, latency bool, cacheSize int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b := monoprocess.NewMonoprocessBackend(sqlite.NewInMemoryBackend(
		sqlite.WithBackendOptions(backend.WithLogger(slog.New(nullHandler{})))))
	defer b.Close()
	wo := worker.DefaultOptions
	wo.WorkflowExecutorCacheSize = cacheSize
	w := worker.New(b, &wo)
	for _, wf := range []any{HelloSequence, FanOutFanIn, Chain} {
		if err := w.RegisterWorkflow(wf); err != nil {
			return err
		}
	}
	for _, a := range []any{SayHello, Square, Increment} {
		if err := w.RegisterActivity(a); err != nil {
			return err
		}
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	c := client.New(b)

	// units returns the instances of a phase of size k: the workflow, its
	// argument, and the activities it runs.
	units := func(k int) (wf any, arg []any, count int, acts int, err error) {
		switch name {
		case "hello":
			return HelloSequence, nil, k, 5 * k, nil
		case "fanout":
			return FanOutFanIn, []any{k}, 1, k, nil
		case "chain":
			return Chain, []any{k}, 1, k, nil
		}
		return nil, nil, 0, 0, fmt.Errorf("unknown workload %q: hello, fanout or chain", name)
	}
	phase := 0
	runPhase := func(k int) (time.Duration, []time.Duration, int, int, error) {
		wf, arg, count, acts, err := units(k)
		if err != nil {
			return 0, nil, 0, 0, err
		}
		phase++
		lat := make([]time.Duration, count)
		start := time.Now()
		one := func(i int) error {
			t0 := time.Now()
			inst, err := c.CreateWorkflowInstance(ctx, client.WorkflowInstanceOptions{InstanceID: fmt.Sprintf("p%d-%d", phase, i)}, wf, arg...)
			if err != nil {
				return err
			}
			if err := c.WaitForWorkflowInstance(ctx, inst, 10*time.Minute); err != nil {
				return err
			}
			lat[i] = time.Since(t0)
			return nil
		}
		if latency {
			for i := range count {
				if err := one(i); err != nil {
					return 0, nil, 0, 0, err
				}
			}
		} else {
			var wg sync.WaitGroup
			errs := make(chan error, count)
			for i := range count {
				wg.Go(func() {
					if err := one(i); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			if err := errors.Join(slices.Collect(func(yield func(error) bool) {
				for e := range errs {
					if !yield(e) {
						return
					}
				}
			})...); err != nil {
				return 0, nil, 0, 0, err
			}
		}
		return time.Since(start), lat, count, acts, nil
	}
	if warmup > 0 {
		if _, _, _, _, err := runPhase(warmup); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	elapsed, lat, count, acts, err := runPhase(n)
	if err != nil {
		return err
	}
	slices.Sort(lat)
	pct := func(p int) float64 {
		i := min(max((len(lat)*p+99)/100-1, 0), len(lat)-1)
		return float64(lat[i].Microseconds()) / 1000
	}
	mode := ""
	if latency {
		mode = " (one at a time)"
	}
	fmt.Printf("go-workflows %s %d%s: %.2fs, %.1f orchestrations/s, %.1f activities/s, latency p50 %.2f ms p95 %.2f ms p99 %.2f ms\n",
		name, n, mode, elapsed.Seconds(), float64(count)/elapsed.Seconds(), float64(acts)/elapsed.Seconds(), pct(50), pct(95), pct(99))
	return nil
}
