package metrics

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azdurable/azdurable/azprovider"
)

// QueueProbe reads the depth and the oldest message of every queue of a task
// hub; *azprovider.Provider implements it (two storage operations per queue).
type QueueProbe interface {
	QueueStats(ctx context.Context) ([]azprovider.QueueStat, error)
}

// DefaultQueueSampleInterval is how often a QueueSampler reads the queues.
// With 16 partitions that is 34 storage operations per sample, 68 a minute.
const DefaultQueueSampleInterval = 30 * time.Second

// QueueSampler reads the queues in the background, at most once per
// interval, so that scrapes cost no storage operations and many scrapers do
// not multiply the cost.
type QueueSampler struct {
	probe    QueueProbe
	interval time.Duration

	mu     sync.Mutex
	stats  []azprovider.QueueStat
	at     time.Time
	errors int64
}

// NewQueueSampler returns a sampler; Run starts it. interval <= 0 means
// DefaultQueueSampleInterval.
func NewQueueSampler(p QueueProbe, interval time.Duration) *QueueSampler {
	if interval <= 0 {
		interval = DefaultQueueSampleInterval
	}
	return &QueueSampler{probe: p, interval: interval}
}

// Run samples until ctx is done.
func (s *QueueSampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample reads the queues once now.
func (s *QueueSampler) Sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.interval)
	defer cancel()
	stats, err := s.probe.QueueStats(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors++
		return
	}
	s.stats, s.at = stats, time.Now()
}

func (s *QueueSampler) last() ([]azprovider.QueueStat, time.Time, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats, s.at, s.errors
}

var (
	descQueueDepth     = desc("queue_depth", "Approximate messages in the queue (visible, locked and delayed), from the last sample; partition is -1 for the work-item queue. A host reports the control queues of the partitions it owns and the work-item queue.", "queue", "partition")
	descQueueAge       = desc("queue_oldest_message_age_seconds", "Age of the oldest visible message of the queue at the last sample (0 when none is visible), by the storage service's clock.", "queue", "partition")
	descQueueSampled   = desc("queue_sample_timestamp_seconds", "Unix time of the last successful queue sample.")
	descQueueSampleErr = desc("queue_sample_errors_total", "Queue samples that failed (the previous sample stays reported).")
)

func (c *Collector) collectQueues(ch chan<- prometheus.Metric, owned []int, ownAll bool) {
	s := c.s.Queues
	if s == nil {
		return
	}
	stats, at, errs := s.last()
	ch <- prometheus.MustNewConstMetric(descQueueSampleErr, prometheus.CounterValue, float64(errs))
	if at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(descQueueSampled, prometheus.GaugeValue, float64(at.UnixNano())/1e9)
	for _, q := range stats {
		if q.Partition >= 0 && !ownAll && !slices.Contains(owned, q.Partition) {
			continue
		}
		age := q.Age().Seconds()
		p := strconv.Itoa(q.Partition)
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(q.ApproximateCount), q.Name, p)
		ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, age, q.Name, p)
	}
}
