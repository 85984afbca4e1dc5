package azprovider

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/test/azurite"
)

// storageParallelism is how many tests run at once unless -parallel says
// otherwise: the tests of this package wait on Azurite and on timers far
// more than they use the CPU, so the default (GOMAXPROCS) leaves the machine
// idle and makes the package several times slower.
const storageParallelism = 8

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(max(storageParallelism, runtime.GOMAXPROCS(0))))
	}
	azurite.Main(m)
}

// testHubName returns a task hub name unique to the test.
func testHubName(t testing.TB) string {
	var b strings.Builder
	b.WriteString("t")
	for _, r := range strings.ToLower(t.Name()) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if len(name) > 26 {
		name = name[:26]
	}
	return fmt.Sprintf("%s%08x", name, rand.Uint32())
}

// newTestProvider creates a provider on a fresh task hub in the shared
// Azurite, deleted when the test ends.
func newTestProvider(t testing.TB, tweak ...func(*Options)) *Provider {
	t.Helper()
	o := Options{ConnectionString: azurite.ForTest(t), TaskHub: testHubName(t), Partitions: 4, CreateIfMissing: true}
	for _, f := range tweak {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.DeleteTaskHub(ctx); err != nil {
			t.Errorf("DeleteTaskHub: %v", err)
		}
	})
	return p
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// idIn returns an instance id with the prefix that routes to partition.
func idIn(p *Provider, prefix string, partition int) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if p.PartitionOf(id) == partition {
			return id
		}
	}
}

// newInstanceEpisode is the first episode of an instance: started, one event.
func newInstanceEpisode(id string, at time.Time) *core.Episode {
	exec := core.NewID()
	st := &core.InstanceState{InstanceID: id, ExecutionID: exec, Name: "Orch", Status: core.StatusRunning,
		CreatedAt: at, UpdatedAt: at, Input: []byte(`"in"`), HistoryEvents: 2}
	return &core.Episode{InstanceID: id, State: st, History: []*core.Event{
		{Seq: 0, Kind: core.EventEpisodeStarted, Time: at},
		{Seq: 1, Kind: core.EventExecutionStarted, Time: at, Name: "Orch", ExecutionID: exec, Data: []byte(`"in"`)},
	}}
}

// nextEpisode continues an instance from its snapshot state with events appended.
func nextEpisode(st *core.InstanceState, token core.CommitToken, seq int64, evs ...*core.Event) *core.Episode {
	c := *st
	c.UpdatedAt = c.UpdatedAt.Add(time.Second)
	for i, ev := range evs {
		ev.Seq = seq + int64(i)
	}
	c.HistoryEvents += len(evs)
	return &core.Episode{InstanceID: st.InstanceID, Token: token, State: &c, History: evs}
}

func commitOne(t testing.TB, p *Provider, ep *core.Episode) core.CommitResult {
	t.Helper()
	res, err := p.Commit(testCtx(t), p.PartitionOf(ep.InstanceID), &core.CommitBatch{Episodes: []*core.Episode{ep}})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if len(res) != 1 {
		t.Fatalf("commit returned %d results", len(res))
	}
	return res[0]
}

var testTime = time.Date(2025, 3, 4, 5, 6, 7, 123456700, time.UTC)
