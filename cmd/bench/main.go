// Command bench measures the throughput, latency, storage cost and resource
// use of azdurable on standard workloads, on the in-memory provider or on
// Azurite, with the host in process or as 1..K worker processes
// (cmd/worker, started through test/cluster). It runs the samples'
// orchestrations; see docs/performance.md for the results and the command
// of each.
//
//	bench -workload hello -n 1000 -provider azurite
//	bench -workload fanout -n 10000 -provider memory
//	bench -workload hello -n 200 -latency -provider azurite -json
//	bench -workload idle -n 10000 -provider azurite -hosts 1
//	bench -workload idlecost -n 100 -provider azurite -hosts 1
//
// Each run plans its units from a fixed seed, runs a warm-up that is not
// counted, samples the hosts' idle storage traffic, then measures. On
// Azurite it first calibrates: 8 goroutines insert table entities for a few
// seconds, giving C, the raw operations per second the storage takes; the
// targets are stated against C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	Workload     string
	N            int
	Warmup       int
	Latency      bool
	Provider     string
	Conn         string // storage instead of a fresh Azurite; from AZDURABLE_CONNECTION_STRING
	Hosts        int
	Partitions   int
	Offload      bool
	Seed         uint64
	Timer        time.Duration
	Payload      int
	Starters     int
	PollInterval time.Duration
	IdleSample   time.Duration
	IdleSettle   time.Duration
	IdleWindow   time.Duration
	Calibrate    time.Duration
	Timeout      time.Duration
	CPUProfile   string
	Format       string // table, json or csv
	Quiet        bool
	HostLogs     bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Workload, "workload", "hello", "hello, fanout, chain, events, timers, payload, idle (memory of cached idle instances), idlecost (storage requests of idle hosts, and the pickup latency of -n starts), opcost (what each kind of storage operation costs Azurite) or failover (ownership after joins, a SIGTERM and a kill -9 of worker processes at their default lease settings)")
	fs.IntVar(&c.N, "n", 100, "size: instances (hello, timers, payload, idle), activities (fanout, chain) or events (events)")
	fs.IntVar(&c.Warmup, "warmup", -1, "size of the warm-up, not counted (-1: a tenth of -n, at least 1; 0: none)")
	fs.BoolVar(&c.Latency, "latency", false, "start each instance after the one before has completed")
	fs.StringVar(&c.Provider, "provider", "memory", "memory, or azurite (a fresh Azurite unless AZDURABLE_CONNECTION_STRING is set)")
	fs.IntVar(&c.Hosts, "hosts", 0, "worker processes (cmd/worker); 0 runs one host in the bench process")
	fs.IntVar(&c.Partitions, "partitions", 16, "partitions of the task hub")
	fs.BoolVar(&c.Offload, "offload", false, "send every activity through the work-item queue")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the planned inputs")
	fs.DurationVar(&c.Timer, "timer", time.Second, "wait of each timer (timers)")
	fs.IntVar(&c.Payload, "payload", 8<<10, "bytes of each of the 5 names (payload)")
	fs.IntVar(&c.Starters, "starters", 32, "goroutines starting instances")
	fs.DurationVar(&c.PollInterval, "poll", 0, "interval of the bench's completion polls (0: 50ms on memory, 1s on azurite)")
	fs.DurationVar(&c.IdleSample, "idle-sample", 2*time.Second, "how long to sample the hosts' idle storage traffic before measuring (0: skip)")
	fs.DurationVar(&c.IdleSettle, "idle-settle", time.Minute, "idlecost: idleness before the count starts, so that every poll has backed off")
	fs.DurationVar(&c.IdleWindow, "idle-window", 2*time.Minute, "idlecost: how long the idle hosts' storage requests are counted; a multiple of the renewal (40s), steady scan (15s) and work-item (30s) intervals, because a host renews all its leases at once")
	fs.DurationVar(&c.Calibrate, "calibrate", 3*time.Second, "length of the calibration on azurite (0: skip)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "longest wait for a phase to complete")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file (the bench process: the host when -hosts 0)")
	jsonOut := fs.Bool("json", false, "print JSON instead of a table")
	csvOut := fs.Bool("csv", false, "print CSV instead of a table")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&c.HostLogs, "host-logs", false, "copy the worker processes' logs to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: bench takes flags only", fs.Args())
	}
	c.Format = "table"
	switch {
	case *jsonOut && *csvOut:
		return nil, errors.New("-json and -csv exclude each other")
	case *jsonOut:
		c.Format = "json"
	case *csvOut:
		c.Format = "csv"
	}
	if c.Warmup < 0 {
		c.Warmup = max(1, c.N/10)
	}
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
		if c.Provider == "azurite" {
			c.PollInterval = time.Second
		}
	}
	c.Conn = os.Getenv("AZDURABLE_CONNECTION_STRING")
	switch {
	case c.IdleSettle < 0 || c.IdleWindow <= 0:
		return nil, fmt.Errorf("-idle-settle (%s) must not be negative and -idle-window (%s) must be positive", c.IdleSettle, c.IdleWindow)
	case c.N < 1:
		return nil, fmt.Errorf("-n is %d; it must be at least 1", c.N)
	case c.Hosts < 0:
		return nil, fmt.Errorf("-hosts is %d; it must not be negative", c.Hosts)
	case c.Partitions < 1 || c.Partitions > 256:
		return nil, fmt.Errorf("-partitions is %d; it must be between 1 and 256", c.Partitions)
	case c.Starters < 1:
		return nil, fmt.Errorf("-starters is %d; it must be at least 1", c.Starters)
	case c.Payload < 1:
		return nil, fmt.Errorf("-payload is %d; it must be at least 1", c.Payload)
	case c.CPUProfile != "" && c.Hosts > 0:
		return nil, errors.New("-cpuprofile profiles the bench process: use it with -hosts 0")
	}
	if (c.Workload == "opcost" || c.Workload == "failover") && c.Provider != "azurite" {
		return nil, fmt.Errorf("-workload %s needs the Azure provider: use it with -provider azurite", c.Workload)
	}
	if c.Workload != "idle" && c.Workload != "idlecost" && c.Workload != "opcost" && c.Workload != "failover" {
		if _, err := findWorkload(c.Workload); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run sets up the environment, runs the workload and prints the result.
func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	prog := &progress{w: stderr}
	if cfg.Quiet {
		prog.w = nil
	}
	var logs io.Writer
	if cfg.HostLogs {
		logs = stderr
	}
	e, err := newEnv(ctx, cfg, logs)
	if err != nil {
		return err
	}
	defer e.close()

	if cfg.Workload == "idle" {
		r, err := e.idle(ctx, cfg.N, prog)
		if err != nil {
			return err
		}
		return writeIdle(stdout, r, cfg.Format)
	}
	if cfg.Workload == "idlecost" {
		r, err := e.idleCost(ctx, cfg.N, prog)
		if err != nil {
			return err
		}
		return writeIdleCost(stdout, r, cfg.Format)
	}

	if cfg.Workload == "failover" {
		r, err := e.failover(ctx, cfg.Partitions, prog)
		if err != nil {
			return err
		}
		return writeFailover(stdout, r, cfg.Format)
	}
	if cfg.Workload == "opcost" {
		d := cfg.Calibrate
		if d <= 0 {
			d = 3 * time.Second
		}
		if !cfg.Quiet {
			fmt.Fprintf(stderr, "measuring each kind of operation with 8 goroutines for %s\n", d)
		}
		pid := 0
		if e.az != nil {
			pid = e.az.PID()
		}
		costs, err := opCost(ctx, e.conn, pid, d)
		if err != nil {
			return err
		}
		return writeOpCost(stdout, costs, cfg.Format)
	}
	var c float64
	if cfg.Provider == "azurite" && cfg.Calibrate > 0 {
		if !cfg.Quiet {
			fmt.Fprintf(stderr, "calibrating: 8 goroutines inserting table entities for %s\n", cfg.Calibrate)
		}
		if c, err = calibrate(ctx, e.conn, cfg.Calibrate); err != nil {
			return err
		}
	}
	w, _ := findWorkload(cfg.Workload)
	r, err := e.run(ctx, w, prog)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", errInterrupted, err)
		}
		return err
	}
	if c > 0 {
		r.CalibrationC, r.ShareOfC = c, r.OpsPerSec/c
	}
	r.checkTargets()
	rs := []*Result{r}
	switch cfg.Format {
	case "json":
		return writeJSON(stdout, rs)
	case "csv":
		return writeCSV(stdout, rs)
	}
	return writeTable(stdout, rs)
}

// startProfile starts a CPU profile into path (none when path is empty)
// and returns the function that stops it.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
