package azprovider

import (
	"bytes"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

func TestEncodeEventRunMatchesCore(t *testing.T) {
	events := []*core.Event{
		{Seq: 0, Kind: core.EventEpisodeStarted, Time: testTime},
		{Seq: 1, Kind: core.EventExecutionStarted, Time: testTime.In(time.FixedZone("X", 3600)), Name: "a<b>&c", ExecutionID: "e",
			Data: []byte(`{"html":"<&>","unicode":"é😀"}`), Parent: &core.ParentRef{InstanceID: "p", TaskID: 2}},
		{Seq: 2, Kind: core.EventActivityCompleted, TaskID: 7, Data: []byte{0, 0xff, '<', '\n'}},
		{Seq: 3, Kind: core.EventActivityFailed, TaskID: 8, Failure: &core.Failure{Kind: core.KindApplication, Message: "x > y"}},
	}
	for n := 1; n <= len(events); n++ {
		want, err := core.EncodeEvents(events[:n])
		must(t, err)
		enc := make([][]byte, n)
		for i, ev := range events[:n] {
			enc[i], err = ev.MarshalJSON()
			must(t, err)
		}
		if got := encodeEventRun(enc); !bytes.Equal(got, want) {
			t.Fatalf("%d events:\n got %s\nwant %s", n, got, want)
		}
	}
}
