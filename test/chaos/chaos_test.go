package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
	"github.com/azdurable/azdurable/test/cluster"
)

var (
	longFlag = flag.Bool("chaos.long", false, "run the long chaos test (or set AZDURABLE_CHAOS_LONG=1)")
	seedFlag = flag.Uint64("chaos.seed", 0, "seed of the schedule and the fault draws (or AZDURABLE_CHAOS_SEED; default 1)")
)

// Worker settings. Azure blob leases last 15 to 60 s; the shortest lease
// keeps the test short. Renewal + hand-over + lease/6 must stay under the
// lease.
const (
	leaseDuration   = 15 * time.Second
	renewInterval   = 4 * time.Second
	acquireInterval = time.Second
	hostCount       = 3
)

var hostArgs = []string{
	"-lease-duration", leaseDuration.String(),
	"-renew-interval", renewInterval.String(),
	"-acquire-interval", acquireInterval.String(),
	"-handover-timeout", "2s",
	"-drain-timeout", "5s",
	"-poll-max-interval", "250ms",
	"-activity-latency", "5ms",
}

// faultRules fail about 8% of every host's storage requests (and slow 2%
// more), of every operation: before storage applies them, and after.
func faultRules() []azurite.FaultRule {
	return []azurite.FaultRule{
		{Kind: azurite.FaultThrottle, Share: 0.025},
		{Kind: azurite.FaultServerError, Share: 0.02},
		{Kind: azurite.FaultReset, Share: 0.01},
		{Kind: azurite.FaultTimeout, Share: 0.005},
		{Kind: azurite.FaultThrottle, Share: 0.006, After: true},
		{Kind: azurite.FaultServerError, Share: 0.006, After: true},
		{Kind: azurite.FaultReset, Share: 0.006, After: true},
		{Kind: azurite.FaultTimeout, Share: 0.002, After: true},
		{Kind: azurite.FaultLatency, Share: 0.02, Latency: 100 * time.Millisecond},
	}
}

// cutFor is how long one host is cut off from storage: past its lease, so
// that the others take its partitions over.
const cutFor = leaseDuration + 5*time.Second

// faultHold is how long a timeout fault or a blackholed request hangs
// before its connection is reset. The workers keep the SDK's 30 s try
// timeout, so without it a timeout would stall a call for 30 s.
const faultHold = 2 * time.Second

// minFailedShare is the share of storage requests that must fail.
const minFailedShare = 0.05

// plan sizes a run.
type plan struct {
	name       string
	partitions int
	chaos      time.Duration // how long faults are scheduled
	waves      int           // workload waves, spread over the chaos phase
	perWave    int           // instances per wave
	maxFanOut  int
	killGap    [2]time.Duration // pause between kills, drawn between these
	cutAt      time.Duration
	azuriteAt  time.Duration
	poisonAt   time.Duration
	poison     int           // undecodable control messages injected
	bound      time.Duration // the whole test fails past this
}

func shortPlan() plan {
	return plan{name: "short", partitions: 8, chaos: 50 * time.Second, waves: 5, perWave: 12, maxFanOut: 20,
		killGap: [2]time.Duration{4 * time.Second, 8 * time.Second}, cutAt: 10 * time.Second, azuriteAt: 40 * time.Second,
		poisonAt: 5 * time.Second, poison: 2, bound: 5 * time.Minute}
}

func longPlan() plan {
	return plan{name: "long", partitions: 16, chaos: 6 * time.Minute, waves: 36, perWave: 12, maxFanOut: 100,
		killGap: [2]time.Duration{4 * time.Second, 8 * time.Second}, cutAt: 60 * time.Second, azuriteAt: 200 * time.Second,
		poisonAt: 30 * time.Second, poison: 4, bound: 25 * time.Minute}
}

func chosenPlan() plan {
	if *longFlag || os.Getenv("AZDURABLE_CHAOS_LONG") == "1" {
		return longPlan()
	}
	return shortPlan()
}

func chosenSeed(t *testing.T) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if v := os.Getenv("AZDURABLE_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("AZDURABLE_CHAOS_SEED=%q is not a number", v)
		}
		return s
	}
	return 1
}

// TestChaos runs the workload through kills, a cut, an Azurite restart,
// storage faults and poison messages, and checks that nothing was lost,
// stuck or corrupted.
func TestChaos(t *testing.T) {
	r := newRun(t, chosenPlan(), chosenSeed(t))
	r.startHosts()
	r.waitCoverage()
	r.setupTook = time.Since(r.begin)
	r.chaos()
	r.heal()
	r.check()
	r.report()
}

// run is one chaos run: the storage, the hosts and their proxies, the
// workload and what was measured.
type run struct {
	t      *testing.T
	ctx    context.Context
	plan   plan
	seed   uint64
	rnd    *rand.Rand
	begin  time.Time
	dir    string // worker binary and host logs, kept when the test fails
	srv    *azurite.Server
	hub    string
	prov   *azprovider.Provider // straight to storage, for the client and the checks
	client *core.Client
	bin    string
	slots  []*slot
	mon    *monitor

	mu         sync.Mutex
	waves      []*samples.Workload
	waveStarts map[string]time.Time // by IDPrefix
	raising    sync.WaitGroup
	raiseErrs  []error

	poison      map[string]bool // texts of the injected poison messages
	poisonedAt  time.Time
	poisoned    []int // partitions that got poison
	kills       int
	restarts    int
	cutHost     string
	cutOwned    []int // partitions the cut host owned when it was cut
	azuriteDown time.Duration
	setupTook   time.Duration
	chaosTook   time.Duration
	results     results
}

// slot is one host id with its fault proxy; kills replace its process.
type slot struct {
	id    string
	proxy *azurite.FaultProxy
	cl    *cluster.Cluster

	mu   sync.Mutex
	host *cluster.Host
	cut  bool
}

func (s *slot) current() (*cluster.Host, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host, s.cut
}

func newRun(t *testing.T, p plan, seed uint64) *run {
	t.Logf("chaos %s run, seed %d", p.name, seed)
	ctx, cancel := context.WithTimeout(context.Background(), p.bound)
	t.Cleanup(cancel)
	dir, err := os.MkdirTemp("", "azdurable-chaos-*")
	if err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, ctx: ctx, plan: p, seed: seed, rnd: rand.New(rand.NewPCG(seed, 0xc4a05)), begin: time.Now(),
		dir: dir, hub: fmt.Sprintf("chaos%d", seed), poison: map[string]bool{}, waveStarts: map[string]time.Time{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})

	// Azurite of our own (the test restarts it), started while the worker
	// builds.
	built := make(chan error, 1)
	go func() {
		var err error
		r.bin, err = cluster.BuildWorker(ctx, dir)
		built <- err
	}()
	// A busy machine can take tens of seconds to start Azurite.
	r.srv, err = azurite.Start(ctx, azurite.Options{StartTimeout: 2 * time.Minute})
	if err != nil {
		<-built
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.srv.Stop(); err != nil {
			t.Errorf("stop Azurite: %v", err)
		}
	})
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	// The test's client goes straight to storage with retries that outlast
	// an Azurite restart.
	r.prov, err = azprovider.New(ctx, azprovider.Options{
		ConnectionString: r.srv.ConnectionString(), TaskHub: r.hub, Partitions: p.partitions, CreateIfMissing: true,
		Retry: azprovider.RetryOptions{MaxRetries: 12, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.client = core.NewClient(r.prov)
	for i := range hostCount {
		s := &slot{id: fmt.Sprintf("h%d", i+1)}
		s.proxy, err = azurite.StartFaultProxy(r.srv.ConnectionString(), azurite.FaultProxyOptions{
			Rules: faultRules(), Seed: seed*100 + uint64(i), Hold: faultHold})
		if err != nil {
			t.Fatal(err)
		}
		// One cluster per host, so that each host gets its proxy's
		// connection string.
		s.cl, err = cluster.New(ctx, cluster.Options{ConnectionString: s.proxy.ConnectionString(), TaskHub: r.hub,
			Partitions: p.partitions, Args: hostArgs, Binary: r.bin, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		r.slots = append(r.slots, s)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range r.slots {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.cl.Close()
				s.proxy.Close()
			}()
		}
		wg.Wait()
	})
	r.mon = newMonitor(r)
	return r
}

func (r *run) startHosts() {
	for _, s := range r.slots {
		r.startHost(s)
	}
	r.mon.start()
	r.t.Cleanup(r.mon.stop)
}

func (r *run) startHost(s *slot) {
	h, err := s.cl.StartHost(r.ctx, s.id)
	if err != nil {
		r.t.Fatal(err)
	}
	s.mu.Lock()
	s.host = h
	s.mu.Unlock()
}

// waitCoverage waits until the hosts own every partition between them.
func (r *run) waitCoverage() {
	took, err := r.mon.waitCovered(r.ctx, time.Minute)
	if err != nil {
		r.t.Fatalf("the hosts did not take every partition: %v", err)
	}
	r.t.Logf("%d hosts own the %d partitions %v after they started", hostCount, r.plan.partitions, took.Round(time.Millisecond))
}

// event is one scheduled action of the chaos phase.
type event struct {
	at   time.Duration
	name string
	do   func()
}

// schedule lays out the chaos phase: workload waves, kills, the cut and its
// reconnect, the Azurite restart and the poison messages.
func (r *run) schedule() []event {
	p := r.plan
	var evs []event
	// The restart comes before a wave due at the same time, so that the
	// resumed hosts have work.
	evs = append(evs, event{p.azuriteAt, "restart Azurite", r.restartAzurite})
	for i := range p.waves {
		evs = append(evs, event{p.chaos * time.Duration(i) / time.Duration(p.waves), fmt.Sprintf("wave %d", i), func() { r.startWave(i) }})
	}
	evs = append(evs, event{p.poisonAt, "inject poison", r.injectPoison})
	evs = append(evs, event{p.cutAt, "cut", r.cut}, event{p.cutAt + cutFor, "reconnect", r.reconnect})
	gap := func() time.Duration {
		return p.killGap[0] + time.Duration(r.rnd.Int64N(int64(p.killGap[1]-p.killGap[0])))
	}
	for at := 3*time.Second + gap()/2; at < p.chaos; at += gap() {
		evs = append(evs, event{at, "kill", r.killOne})
	}
	slices.SortStableFunc(evs, func(a, b event) int { return int(a.at - b.at) })
	return evs
}

// chaos runs the schedule.
func (r *run) chaos() {
	start := time.Now()
	for _, ev := range r.schedule() {
		if d := time.Until(start.Add(ev.at)); d > 0 {
			select {
			case <-r.ctx.Done():
				r.t.Fatalf("chaos phase: %v", r.ctx.Err())
			case <-time.After(d):
			}
		}
		ev.do()
	}
	r.chaosTook = time.Since(start)
}

func (r *run) startWave(i int) {
	prefix := fmt.Sprintf("c%d-w%02d", r.seed, i)
	w, err := samples.NewWorkload(samples.WorkloadOptions{
		Seed: r.seed*1000 + uint64(i), Instances: r.plan.perWave, IDPrefix: prefix, MaxFanOut: r.plan.maxFanOut,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	start := time.Now()
	if err := w.Start(r.ctx, r.client); err != nil {
		r.t.Fatalf("wave %d: %v", i, err)
	}
	r.mu.Lock()
	r.waves = append(r.waves, w)
	r.waveStarts[prefix] = start
	r.mu.Unlock()
	// Raise the planned events while the faults go on.
	r.raising.Add(1)
	go func() {
		defer r.raising.Done()
		if err := w.RaiseEvents(r.ctx, r.client); err != nil {
			r.mu.Lock()
			r.raiseErrs = append(r.raiseErrs, fmt.Errorf("wave %d: %w", i, err))
			r.mu.Unlock()
		}
	}()
}

// killOne kills a running host that is not cut off with SIGKILL, as long as
// another such host stays, and starts it again after a short pause.
func (r *run) killOne() {
	var live []*slot
	for _, s := range r.slots {
		if h, cut := s.current(); h != nil && h.Running() && !cut {
			live = append(live, s)
		}
	}
	if len(live) < 2 {
		return
	}
	s := live[r.rnd.IntN(len(live))]
	h, _ := s.current()
	owned := r.mon.owned(s)
	h.Kill()
	r.kills++
	if len(owned) > 0 {
		r.mon.expect(recovery{kind: "kill", what: "kill -9 " + s.id, at: time.Now(), parts: owned})
	}
	pause := 500*time.Millisecond + time.Duration(r.rnd.Int64N(int64(1500*time.Millisecond)))
	select {
	case <-r.ctx.Done():
		r.t.Fatalf("kill: %v", r.ctx.Err())
	case <-time.After(pause):
	}
	r.startHost(s)
	r.restarts++
}

// cut blackholes the storage of the running host that owns the most
// partitions, for longer than its lease.
func (r *run) cut() {
	var victim *slot
	var owned []int
	for _, s := range r.slots {
		if h, _ := s.current(); h == nil || !h.Running() {
			continue
		}
		if o := r.mon.owned(s); victim == nil || len(o) > len(owned) {
			victim, owned = s, o
		}
	}
	if victim == nil {
		r.t.Fatal("cut: no host runs")
	}
	victim.mu.Lock()
	victim.cut = true
	victim.mu.Unlock()
	victim.proxy.Cut(azurite.CutBlackhole)
	r.cutHost, r.cutOwned = victim.id, owned
	r.mon.expect(recovery{kind: "cut", what: "cut off " + victim.id, at: time.Now(), parts: owned, slot: victim})
}

func (r *run) reconnect() {
	for _, s := range r.slots {
		s.mu.Lock()
		wasCut := s.cut
		s.cut = false
		s.mu.Unlock()
		if wasCut {
			s.proxy.Reconnect()
			r.mon.expect(recovery{kind: "rejoin", what: "reconnect " + s.id, at: time.Now(), slot: s})
		}
	}
}

// restartAzurite stops Azurite with SIGTERM (which keeps its data) and
// starts it again on the same ports.
func (r *run) restartAzurite() {
	start := time.Now()
	if err := r.srv.Restart(r.ctx); err != nil {
		r.t.Fatalf("restart Azurite: %v", err)
	}
	r.azuriteDown = time.Since(start)
	r.mon.expect(recovery{kind: "azurite", what: "Azurite restart", at: time.Now(), baseline: r.mon.episodes()})
}

// injectPoison puts undecodable messages on control queues, straight into
// storage.
func (r *run) injectPoison() {
	stats, err := r.prov.QueueStats(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	qs, err := azqueue.NewServiceClientFromConnectionString(r.srv.ConnectionString(), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := range r.plan.poison {
		q := stats[r.rnd.IntN(r.plan.partitions)]
		text := fmt.Sprintf("chaos poison %d for partition %d: undecodable on purpose", i, q.Partition)
		if _, err := qs.NewQueueClient(q.Name).EnqueueMessage(r.ctx, text, nil); err != nil {
			r.t.Fatalf("inject poison into %s: %v", q.Name, err)
		}
		r.poison[text] = true
		r.poisoned = append(r.poisoned, q.Partition)
	}
	r.poisonedAt = time.Now()
}

// heal ends every fault: stopped hosts start again and cut hosts reconnect.
func (r *run) heal() {
	r.reconnect()
	for _, s := range r.slots {
		if h, _ := s.current(); h == nil || !h.Running() {
			r.startHost(s)
			r.restarts++
		}
	}
}
