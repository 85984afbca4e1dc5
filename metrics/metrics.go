// Package metrics exposes a worker host's counters as Prometheus metrics.
//
// A Collector reads, at every scrape, the runtime's counters and latency
// histograms (core.Runtime.Stats), the storage provider's operation counts
// (for example azprovider.Provider.Stats) and the partition manager's
// ownership and lease counters. It keeps no state of its own, so a scrape
// always shows the sources' current values. docs/metrics.md lists every
// metric.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.New(metrics.Sources{Runtime: rt, Storage: prov, Ownership: mgr}))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Handler does the same with the Go runtime and process metrics added.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/partition"
)

// Namespace starts every metric name.
const Namespace = "azdurable"

// Runtime is what the collector reads of a runtime; *core.Runtime has it.
type Runtime interface {
	Stats() core.RuntimeStats
	OwnedPartitions() []int
}

// Storage is what the collector reads of a storage provider: operations
// issued, by kind. *azprovider.Provider has it.
type Storage interface {
	Stats() map[string]int64
}

// Ownership is what the collector reads of a partition manager;
// *partition.Manager has it.
type Ownership interface {
	// Owned lists the partitions this host owns and runs.
	Owned() []int
	// Ready reports whether a scan of the leases has succeeded yet.
	Ready() bool
	Stats() partition.Stats
}

// Sources are what a Collector reads. Nil sources are left out.
type Sources struct {
	// HostID labels azdurable_host_info.
	HostID    string
	Runtime   Runtime
	Storage   Storage
	Ownership Ownership
	// Queues, if set, adds queue depth and message age from its last sample.
	Queues *QueueSampler
}

// Collector is a prometheus.Collector over Sources.
type Collector struct {
	s Sources
}

var (
	_ prometheus.Collector = (*Collector)(nil)
	_ Ownership            = (*partition.Manager)(nil)
)

// New returns a collector over s.
func New(s Sources) *Collector { return &Collector{s: s} }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// The metrics, documented in docs/metrics.md.
var (
	descHostInfo = desc("host_info", "Always 1; the host label is this worker's host id.", "host")

	descEpisodes        = desc("episodes_total", "Orchestration episodes committed by this host.")
	descCacheHits       = desc("executor_cache_hits_total", "Episodes that continued an executor cached in memory, without replay.")
	descCacheMisses     = desc("executor_cache_misses_total", "Episodes that loaded and replayed the instance's history.")
	descCachedInstances = desc("executor_cache_instances", "Instances whose executors are cached in memory now.")
	descConflicts       = desc("commit_conflicts_total", "Episode commits rejected because another writer had moved the instance on.")
	descActivities      = desc("activities_total", "Activities this host ran, by source: local (on the partition's owner) or queue (from the shared work-item queue).", "source")
	descWaiting         = desc("activities_waiting", "Activities of this host's partitions waiting in memory for a free slot now (bounded by the activity backlog).")
	descOffloaded       = desc("activities_offloaded_total", "Activities this host sent to the shared work-item queue instead of running them itself.")
	descInMemory        = desc("messages_delivered_in_memory_total", "Messages delivered between partitions of this host in memory, without the storage queues.")
	descDeadLettered    = desc("messages_dead_lettered_total", "Messages and work items moved to the dead-letter store as poison.")

	descActivityFailures      = desc("activity_failures_total", "Activity attempts this host ran that failed, and work items it dead-lettered, by failure kind.", "kind")
	descOrchestrationFailures = desc("orchestration_failures_total", "Orchestration executions that ended Failed in a commit of this host, by failure kind.", "kind")
	descScheduleToStart       = desc("activity_schedule_to_start_seconds", "Time from an activity's scheduling to the start of an attempt on this host.")
	descEpisodeDuration       = desc("episode_duration_seconds", "Time an episode took on this host, from the start of its preparation to the end of its commit.")
	descStartToComplete       = desc("orchestration_start_to_complete_seconds", "Time from an instance's creation to the commit on this host that ended it, by final status.", "status")

	descPartitionsRunning = desc("partitions_running", "Partitions whose dispatchers run on this host now.")
	descPartitionsOwned   = desc("partitions_owned", "Partitions this host owns now: lease held and partition opened.")
	descPartitionOwned    = desc("partition_owned", "1 for each partition this host owns now; absent otherwise.", "partition")
	descOwnershipReady    = desc("ownership_ready", "1 once the partition manager has finished its first scan of the leases, else 0.")
	descOwnershipScans    = desc("ownership_scans_total", "Successful scans of every lease and host record by the partition manager.")
	descLeaseEvents       = desc("lease_events_total", "Lease events of this host's partition manager, by event: acquired, released, stolen, handed_over, lost, renew_failed, storage_error, open_failed.", "event")

	descStorageOps = desc("storage_operations_total", "Storage requests issued by the provider, by kind (for example table.batch, queue.get, blob.lease); a request counts once however often it was retried.", "kind")
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHostInfo, descEpisodes, descCacheHits, descCacheMisses, descCachedInstances,
		descConflicts, descActivities, descWaiting, descOffloaded, descInMemory, descDeadLettered, descActivityFailures,
		descOrchestrationFailures, descScheduleToStart, descEpisodeDuration, descStartToComplete, descPartitionsRunning,
		descPartitionsOwned, descPartitionOwned, descOwnershipReady, descOwnershipScans, descLeaseEvents, descStorageOps,
		descQueueDepth, descQueueAge, descQueueSampled, descQueueSampleErr} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads every source now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.s.HostID != "" {
		gauge(descHostInfo, 1, c.s.HostID)
	}
	if rt := c.s.Runtime; rt != nil {
		s := rt.Stats()
		counter(descEpisodes, s.Episodes)
		counter(descCacheHits, s.CacheHits)
		counter(descCacheMisses, s.CacheMisses)
		gauge(descCachedInstances, float64(s.CachedInstances))
		counter(descConflicts, s.Conflicts)
		counter(descActivities, s.ActivitiesLocal, "local")
		counter(descActivities, s.ActivitiesRemote, "queue")
		counter(descOffloaded, s.ActivitiesOffloaded)
		gauge(descWaiting, float64(s.ActivitiesWaiting))
		counter(descInMemory, s.DeliveredInMemory)
		counter(descDeadLettered, s.DeadLettered)
		for kind, n := range s.ActivityFailures {
			counter(descActivityFailures, n, kind)
		}
		for kind, n := range s.OrchestrationFailures {
			counter(descOrchestrationFailures, n, kind)
		}
		ch <- histogram(descScheduleToStart, s.ActivityStartDelay)
		ch <- histogram(descEpisodeDuration, s.EpisodeDuration)
		for st, h := range s.StartToComplete {
			ch <- histogram(descStartToComplete, h, strings.ToLower(st.String()))
		}
		gauge(descPartitionsRunning, float64(len(rt.OwnedPartitions())))
	}
	if st := c.s.Storage; st != nil {
		for kind, n := range st.Stats() {
			counter(descStorageOps, n, kind)
		}
	}
	var owned []int
	switch {
	case c.s.Ownership != nil:
		o := c.s.Ownership
		owned = o.Owned()
		ready := 0.0
		if o.Ready() {
			ready = 1
		}
		gauge(descOwnershipReady, ready)
		s := o.Stats()
		counter(descOwnershipScans, s.Scans)
		for _, e := range []struct {
			event string
			n     int64
		}{
			{"acquired", s.Acquired}, {"released", s.Released}, {"stolen", s.Stolen}, {"handed_over", s.HandedOver},
			{"lost", s.Lost}, {"renew_failed", s.RenewFailures}, {"storage_error", s.StorageErrors}, {"open_failed", s.OpenFailures},
		} {
			counter(descLeaseEvents, e.n, e.event)
		}
	case c.s.Runtime != nil:
		// Without a partition manager the runtime owns what it runs.
		owned = c.s.Runtime.OwnedPartitions()
	default:
		c.collectQueues(ch, nil, true)
		return
	}
	c.collectQueues(ch, owned, false)
	gauge(descPartitionsOwned, float64(len(owned)))
	for _, p := range slices.Sorted(slices.Values(owned)) {
		gauge(descPartitionOwned, 1, strconv.Itoa(p))
	}
}

// histogram turns a runtime histogram into a Prometheus one, in seconds.
func histogram(d *prometheus.Desc, h core.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b.Seconds()] = h.Counts[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, labels...)
}

// Handler serves the sources' metrics, with the Go runtime and process
// metrics, in the Prometheus exposition format.
func Handler(s Sources) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		New(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
