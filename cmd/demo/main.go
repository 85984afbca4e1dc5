// Command demo runs a local azdurable cluster and a real workload on it:
// Azurite, three worker hosts (cmd/worker) sharing 16 partitions by blob
// leases, and a mixed set of orchestrations from the samples package. It
// shows progress and which host owns which partitions, kills one host with
// SIGKILL part-way so the fail-over can be seen, prints a summary, and stops
// everything it started on exit and on Ctrl-C.
//
//	go run ./cmd/demo [-n 600] [-hosts 3] [-partitions 16] [-kill-at 0.3] [-hold]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/dashboard"
	"github.com/azdurable/azdurable/ops"
	"github.com/azdurable/azdurable/test/azurite"
	"github.com/azdurable/azdurable/test/cluster"
)

type config struct {
	instances  int
	hosts      int
	partitions int
	killAt     float64
	seed       uint64
	timeout    time.Duration
	verbose    bool
	dashboard  string
	hold       bool
}

// dashboardURL is where the demo serves the dashboard.
var dashboardURL string

func main() {
	var c config
	flag.IntVar(&c.instances, "n", 600, "orchestration instances in the workload")
	flag.IntVar(&c.hosts, "hosts", 3, "worker hosts to start")
	flag.IntVar(&c.partitions, "partitions", 16, "partitions of the task hub")
	flag.Float64Var(&c.killAt, "kill-at", 0.3, "kill one host (SIGKILL) when this share of the workload has completed; 0 disables")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the workload mix")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.StringVar(&c.dashboard, "dashboard", "127.0.0.1:0", "listen address of the read-only dashboard (port 0 picks a free port)")
	flag.BoolVar(&c.hold, "hold", false, "after the summary, keep the cluster and the dashboard running until Ctrl-C")
	flag.BoolVar(&c.verbose, "v", false, "copy the hosts' and Azurite's logs to stderr")
	flag.Parse()
	if c.hosts < 1 || c.partitions < 1 || c.instances < 1 || c.killAt < 0 || c.killAt >= 1 {
		fmt.Fprintln(os.Stderr, "demo: -n, -hosts and -partitions must be positive, and -kill-at in [0,1)")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := run(ctx, c); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "\ndemo: interrupted; everything it started has been stopped")
			os.Exit(130)
		}
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	var logs io.Writer
	if c.verbose {
		logs = os.Stderr
	}

	step("starting Azurite (installing it from npm first if needed)")
	az, err := azurite.Start(ctx, azurite.Options{Output: logs})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping Azurite")
		az.Stop()
	}()
	fmt.Printf("        blob :%d  queue :%d  table :%d  data %s\n", az.BlobPort(), az.QueuePort(), az.TablePort(), az.Location())
	connStr := az.ConnectionString()

	const hubName = "demo"
	prov, err := azprovider.New(ctx, azprovider.Options{ConnectionString: connStr, TaskHub: hubName, Partitions: c.partitions, CreateIfMissing: true})
	if err != nil {
		return fmt.Errorf("create the task hub: %w", err)
	}
	client := core.NewClient(prov)

	hub, err := ops.Open(ctx, connStr, hubName)
	if err != nil {
		return err
	}
	dh, err := dashboard.New(dashboard.Options{Hub: hub})
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.dashboard)
	if err != nil {
		return fmt.Errorf("dashboard: %w (choose another address with -dashboard)", err)
	}
	go dashboard.Serve(ctx, ln, dh)
	dashboardURL = "http://" + ln.Addr().String() + "/"
	step("dashboard (read-only) while the demo runs: " + dashboardURL)

	step(fmt.Sprintf("building cmd/worker and starting %d hosts", c.hosts))
	cl, err := cluster.New(ctx, cluster.Options{
		ConnectionString: connStr, TaskHub: hubName, Partitions: c.partitions, Logs: logs,
		// Short leases make the fail-over quick to watch (the default is 30 s).
		Args: []string{"-lease-duration", "15s", "-renew-interval", "4s", "-lock-duration", "15s", "-activity-latency", "20ms"},
	})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the hosts")
		cl.Close()
	}()
	for i := range c.hosts {
		h, err := cl.StartHost(ctx, fmt.Sprintf("host-%c", 'a'+i))
		if err != nil {
			return err
		}
		fmt.Printf("        %s  pid %-7d http://%s/status  /metrics  /healthz\n", h.ID, h.PID(), h.Addr)
	}

	step("waiting until every partition is owned")
	if err := waitBalanced(ctx, cl, c.partitions); err != nil {
		return err
	}
	printOwnership(cl.Ownership(ctx), c.partitions)

	step(fmt.Sprintf("running a mixed workload of %d orchestrations", c.instances))
	return runWorkload(ctx, c, client, cl)
}

func step(s string) { fmt.Printf("==> %s\n", s) }

// waitBalanced waits until the running hosts own every partition between
// them, each exactly once.
func waitBalanced(ctx context.Context, cl *cluster.Cluster, partitions int) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if ownedOnce(cl.Ownership(ctx), partitions) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func ownedOnce(own map[string][]int, partitions int) bool {
	seen := make([]int, partitions)
	for _, ps := range own {
		for _, p := range ps {
			if p >= 0 && p < partitions {
				seen[p]++
			}
		}
	}
	return !slices.ContainsFunc(seen, func(n int) bool { return n != 1 })
}

func printOwnership(own map[string][]int, partitions int) {
	ids := make([]string, 0, len(own))
	for id := range own {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ps := own[id]
		strs := make([]string, len(ps))
		for i, p := range ps {
			strs[i] = fmt.Sprint(p)
		}
		fmt.Printf("        %s owns %2d/%d: %s\n", id, len(ps), partitions, strings.Join(strs, " "))
	}
}
