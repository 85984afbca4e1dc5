package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
)

type fakeProbe struct {
	stats []azprovider.QueueStat
	err   error
	calls int
}

func (f *fakeProbe) QueueStats(context.Context) ([]azprovider.QueueStat, error) {
	f.calls++
	return f.stats, f.err
}

func TestQueueMetricsReportOwnedQueuesFromTheLastSample(t *testing.T) {
	read := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	probe := &fakeProbe{stats: []azprovider.QueueStat{
		{Name: "hub-control-00", Partition: 0, ApproximateCount: 3, OldestInsertion: read.Add(-90 * time.Second), ReadAt: read},
		{Name: "hub-control-01", Partition: 1, ApproximateCount: 7, ReadAt: read},
		{Name: "hub-workitems", Partition: -1, ApproximateCount: 2, OldestInsertion: read.Add(-time.Second), ReadAt: read},
	}}
	s := NewQueueSampler(probe, time.Minute)
	c := New(Sources{Queues: s, Runtime: fakeRuntimeOwning{0}})

	// Before the first sample: only the error counter.
	if n := testutil.CollectAndCount(c, "azdurable_queue_depth"); n != 0 {
		t.Fatalf("%d queue_depth series before any sample", n)
	}
	s.Sample(context.Background())
	want := `
# HELP azdurable_queue_depth Approximate messages in the queue (visible, locked and delayed), from the last sample; partition is -1 for the work-item queue. A host reports the control queues of the partitions it owns and the work-item queue.
# TYPE azdurable_queue_depth gauge
azdurable_queue_depth{partition="-1",queue="hub-workitems"} 2
azdurable_queue_depth{partition="0",queue="hub-control-00"} 3
# HELP azdurable_queue_oldest_message_age_seconds Age of the oldest visible message of the queue at the last sample (0 when none is visible), by the storage service's clock.
# TYPE azdurable_queue_oldest_message_age_seconds gauge
azdurable_queue_oldest_message_age_seconds{partition="-1",queue="hub-workitems"} 1
azdurable_queue_oldest_message_age_seconds{partition="0",queue="hub-control-00"} 90
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "azdurable_queue_depth", "azdurable_queue_oldest_message_age_seconds"); err != nil {
		t.Fatal(err)
	}
	// Scrapes do not read storage; a failed sample keeps the last one.
	for range 3 {
		testutil.CollectAndCount(c)
	}
	probe.err = errors.New("storage down")
	s.Sample(context.Background())
	if probe.calls != 2 {
		t.Fatalf("probe called %d times, want 2 (scrapes must not read storage)", probe.calls)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "azdurable_queue_depth", "azdurable_queue_oldest_message_age_seconds"); err != nil {
		t.Fatalf("after a failed sample: %v", err)
	}
	if _, _, errs := s.last(); errs != 1 {
		t.Fatalf("sample errors = %d, want 1", errs)
	}
}

// fakeRuntimeOwning is a runtime that owns the given partitions.
type fakeRuntimeOwning []int

func (f fakeRuntimeOwning) Stats() core.RuntimeStats { return core.RuntimeStats{} }
func (f fakeRuntimeOwning) OwnedPartitions() []int   { return f }
