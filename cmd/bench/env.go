package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"syscall"
	"time"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/core/memory"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
	"github.com/azdurable/azdurable/test/cluster"
)

// env is where a run happens: the storage, the hosts and the clients.
//
// Storage operations are counted in three places, so that each can be
// reported for what it is: the hosts' providers (the in-process runtime's,
// or each worker's /status), the client's (starts and raised events; with
// an in-process host the client shares the runtime's provider, as embedding
// code does), and the observer's (the completion polling of the bench
// itself, reported apart).
type env struct {
	cfg *config

	az   *azurite.Server
	conn string

	mem *memory.Provider // memory provider, shared by all roles

	rtProv  core.Provider // in-process runtime's provider
	rt      *core.Runtime
	cluster *cluster.Cluster
	hosts   []*cluster.Host

	client   *core.Client
	clientAz *azprovider.Provider // nil when the client shares rtProv
	observer *core.Client
	obsAz    *azprovider.Provider
}

const taskHub = "bench"

func newEnv(ctx context.Context, cfg *config, logs io.Writer) (_ *env, err error) {
	e := &env{cfg: cfg}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	switch cfg.Provider {
	case "memory":
		if cfg.Hosts > 0 {
			return nil, errors.New("worker processes need shared storage: use -provider azurite with -hosts > 0")
		}
		if e.mem, err = memory.New(memory.Options{Partitions: cfg.Partitions}); err != nil {
			return nil, err
		}
		e.rtProv = e.mem
	case "azurite":
		if cfg.Conn != "" {
			e.conn = cfg.Conn
		} else {
			if e.az, err = azurite.Start(ctx, azurite.Options{}); err != nil {
				return nil, err
			}
			e.conn = e.az.ConnectionString()
		}
		newAz := func() (*azprovider.Provider, error) {
			return azprovider.New(ctx, azprovider.Options{ConnectionString: e.conn, TaskHub: taskHub,
				Partitions: cfg.Partitions, CreateIfMissing: true})
		}
		if e.obsAz, err = newAz(); err != nil {
			return nil, err
		}
		if cfg.Hosts == 0 {
			az, err := newAz()
			if err != nil {
				return nil, err
			}
			e.rtProv = az
		} else if e.clientAz, err = newAz(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown provider %q: use memory or azurite", cfg.Provider)
	}

	if cfg.Hosts == 0 {
		reg := core.NewRegistry()
		if err := samples.Register(reg); err != nil {
			return nil, err
		}
		if err := registerBenchOnly(reg); err != nil {
			return nil, err
		}
		e.rt, err = core.NewRuntime(core.Options{Provider: e.rtProv, Registry: reg, HostID: "bench-host",
			OffloadActivities: cfg.Offload})
		if err != nil {
			return nil, err
		}
		if err := e.rt.Start(ctx); err != nil {
			return nil, err
		}
		e.client = e.rt.Client()
		if e.mem != nil {
			e.observer = e.client
		} else {
			e.observer = core.NewClient(e.obsAz)
		}
		return e, nil
	}

	e.cluster, err = cluster.New(ctx, cluster.Options{ConnectionString: e.conn, TaskHub: taskHub,
		Partitions: cfg.Partitions, Logs: logs})
	if err != nil {
		return nil, err
	}
	var args []string
	if cfg.Offload {
		args = append(args, "-offload-activities")
	}
	for i := range cfg.Hosts {
		h, err := e.cluster.StartHost(ctx, "host"+strconv.Itoa(i+1), args...)
		if err != nil {
			return nil, err
		}
		e.hosts = append(e.hosts, h)
	}
	if err := e.waitOwned(ctx); err != nil {
		return nil, err
	}
	e.client = core.NewClient(e.clientAz)
	e.observer = core.NewClient(e.obsAz)
	return e, nil
}

// waitOwned waits until the worker hosts own every partition between them,
// each its share.
func (e *env) waitOwned(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	share := (e.cfg.Partitions + len(e.hosts) - 1) / len(e.hosts)
	for {
		owned, balanced := map[int]bool{}, true
		for _, h := range e.hosts {
			s, err := h.Status(ctx)
			if err != nil {
				balanced = false
				continue
			}
			for _, p := range s.Owned {
				owned[p] = true
			}
			if len(s.Owned) > share || !s.Ready {
				balanced = false
			}
		}
		if len(owned) == e.cfg.Partitions && balanced {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("worker hosts did not take all %d partitions: %w", e.cfg.Partitions, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (e *env) close() {
	if e.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = e.rt.Shutdown(ctx)
		cancel()
	}
	if e.cluster != nil {
		e.cluster.Close()
	}
	if e.az != nil {
		_ = e.az.Stop()
	}
}

// counts are storage operations by kind.
type counts map[string]int64

func (c counts) sub(o counts) counts {
	out := counts{}
	for k, v := range c {
		if d := v - o[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (c counts) add(o counts) {
	for k, v := range o {
		c[k] += v
	}
}

func (c counts) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// memoryCounts turns the memory provider's per-method call counts into counts.
func memoryCounts(s memory.Stats) counts {
	out := counts{}
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		if n := v.Field(i).Int(); n != 0 {
			out["call."+v.Type().Field(i).Name] = n
		}
	}
	return out
}

// snapshot is the state of every counter at one instant.
type snapshot struct {
	at       time.Time
	host     counts // the hosts' storage operations (and the client's, in process)
	client   counts
	observer counts
	runtime  core.RuntimeStats // summed over hosts
	usage    map[string]usage  // by process name
}

func (e *env) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{at: time.Now(), host: counts{}, client: counts{}, observer: counts{}, usage: map[string]usage{}}
	switch {
	case e.mem != nil:
		s.host = memoryCounts(e.mem.Stats())
	case e.rt != nil:
		s.host = e.rtProv.(*azprovider.Provider).Stats()
	}
	if e.clientAz != nil {
		s.client = e.clientAz.Stats()
	}
	if e.obsAz != nil {
		s.observer = e.obsAz.Stats()
	}
	if e.rt != nil {
		s.runtime = e.rt.Stats()
		u, err := selfUsage()
		if err != nil {
			return nil, err
		}
		s.usage["bench (host in process)"] = u
	}
	for _, h := range e.hosts {
		st, err := h.Status(ctx)
		if err != nil {
			return nil, err
		}
		s.host.add(st.Storage)
		if st.Runtime != nil {
			addRuntime(&s.runtime, st.Runtime)
		}
		u, err := procUsage(h.PID())
		if err != nil {
			return nil, err
		}
		s.usage[h.ID] = u
	}
	if e.rt == nil {
		if u, err := selfUsage(); err == nil {
			s.usage["bench (client)"] = u
		}
	}
	if e.az != nil {
		if u, err := procUsage(e.az.PID()); err == nil {
			s.usage["azurite"] = u
		}
	}
	return s, nil
}

func addRuntime(to *core.RuntimeStats, s *core.RuntimeStats) {
	to.Episodes += s.Episodes
	to.CacheHits += s.CacheHits
	to.CacheMisses += s.CacheMisses
	to.Conflicts += s.Conflicts
	to.ActivitiesLocal += s.ActivitiesLocal
	to.ActivitiesOffloaded += s.ActivitiesOffloaded
	to.ActivitiesRemote += s.ActivitiesRemote
	to.DeliveredInMemory += s.DeliveredInMemory
	to.DeadLettered += s.DeadLettered
	to.CachedInstances += s.CachedInstances
}

// activities is how many activities ran: on their owner, or from the
// work-item queue.
func activities(s core.RuntimeStats) int64 { return s.ActivitiesLocal + s.ActivitiesRemote }

// usage is a process's CPU time so far and its peak resident memory.
type usage struct {
	PID     int
	CPU     time.Duration
	PeakRSS int64 // bytes (VmHWM)
	RSS     int64 // bytes (VmRSS), now
}

func selfUsage() (usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, err
	}
	u, err := procUsage(syscall.Getpid())
	u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return u, err
}
