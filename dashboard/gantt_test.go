package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestLayoutGanttPlacesSpansOnOneAxis(t *testing.T) {
	spans := []ops.Span{
		{Kind: ops.KindExecution, Name: "Fan", Start: at(0), End: at(1000), Status: ops.StatusCompleted},
		{Kind: ops.KindActivity, Name: "Square", TaskID: 1, Start: at(0), End: at(500), Status: ops.StatusCompleted},
		{Kind: ops.KindActivity, Name: "Square", TaskID: 2, Start: at(250), End: at(1000), Status: ops.StatusFailed,
			Failure: &core.Failure{Type: "boom", Message: "it broke"}},
		{Kind: ops.KindEvent, Name: "go", Start: at(1000), End: at(1000), Status: ops.StatusCompleted},
		{Kind: ops.KindTimer, TaskID: 3, Start: at(900), End: at(900), Status: ops.StatusFired},
	}
	g := layoutGantt(spans, at(99999))
	if g.Total != time.Second || !g.Start.Equal(t0) {
		t.Fatalf("axis %v from %v, want 1s from %v", g.Total, g.Start, t0)
	}
	if want := []string{"+0s", "+250ms", "+500ms", "+750ms", "+1s"}; strings.Join(g.Ticks, " ") != strings.Join(want, " ") {
		t.Fatalf("ticks %v, want %v", g.Ticks, want)
	}
	want := []struct {
		x, w  float64
		label string
		point bool
	}{
		{0, 1000, "Fan", false},
		{0, 500, "Square #1", false},
		{250, 750, "Square #2", false},
		{1000 - minBarWidth, minBarWidth, "go", true}, // an instant at the end stays on the track
		{900, minBarWidth, "timer #3", false},
	}
	for i, r := range g.Rows {
		if r.X != want[i].x || r.W != want[i].w || r.Label != want[i].label || r.Point != want[i].point {
			t.Errorf("row %d: x %v w %v label %q point %v, want %+v", i, r.X, r.W, r.Label, r.Point, want[i])
		}
	}
	if tip := g.Rows[2].Tip; tip != "activity Square #2: failed after 750ms — boom: it broke" {
		t.Errorf("tip %q", tip)
	}
}

func TestLayoutGanttRunsPendingSpansToNow(t *testing.T) {
	spans := []ops.Span{
		{Kind: ops.KindExecution, Name: "Wait", Start: at(0), Status: ops.StatusPending},
		{Kind: ops.KindTimer, TaskID: 1, Start: at(100), Status: ops.StatusPending},
	}
	g := layoutGantt(spans, at(2000))
	if g.Total != 2*time.Second {
		t.Fatalf("total %v, want 2s (up to now)", g.Total)
	}
	if r := g.Rows[1]; r.X != 50 || r.W != 950 {
		t.Fatalf("pending timer at %v width %v, want 50 and 950", r.X, r.W)
	}
	// A clock behind the history must not give a negative axis.
	if g := layoutGantt(spans, at(-5000)); g.Total != 100*time.Millisecond {
		t.Fatalf("total %v with a clock behind the history, want 100ms", g.Total)
	}
	// Once the execution has ended, a span left pending ends with it.
	spans[0].End, spans[0].Status = at(400), ops.StatusCanceled
	if g := layoutGantt(spans, at(9000)); g.Total != 400*time.Millisecond || g.Rows[1].W != 750 {
		t.Fatalf("total %v, pending width %v; want 400ms and 750", g.Total, g.Rows[1].W)
	}
}

func TestLayoutGanttEdges(t *testing.T) {
	if g := layoutGantt(nil, t0); g != nil {
		t.Fatalf("no spans gave %+v, want nil", g)
	}
	// Everything at one instant: bars stay visible.
	g := layoutGantt([]ops.Span{{Kind: ops.KindExecution, Start: t0, End: t0, Status: ops.StatusCompleted}}, t0)
	if g.Rows[0].W != minBarWidth || g.Rows[0].X != 0 {
		t.Fatalf("instant execution: x %v w %v", g.Rows[0].X, g.Rows[0].W)
	}
	many := make([]ops.Span, maxGanttRows+7)
	for i := range many {
		many[i] = ops.Span{Kind: ops.KindActivity, Name: "a", Start: at(i), End: at(i + 1), Status: ops.StatusCompleted}
	}
	if g := layoutGantt(many, t0); len(g.Rows) != maxGanttRows || g.Hidden != 7 {
		t.Fatalf("%d rows, %d hidden; want %d and 7", len(g.Rows), g.Hidden, maxGanttRows)
	}
}

func TestSpanLabels(t *testing.T) {
	for _, c := range []struct {
		s           ops.Span
		kind, label string
	}{
		{ops.Span{Kind: ops.KindSubOrchestration, Name: "Child", TaskID: 4, ChildID: "c"}, "sub-orchestration", "Child #4"},
		{ops.Span{Kind: ops.KindEvent, Name: "approval"}, "event received", "approval"},
		{ops.Span{Kind: ops.KindEvent, Name: "ping", TaskID: 2, ChildID: "other"}, "event sent", "ping #2"},
		{ops.Span{Kind: ops.KindDetached, Name: "Job", TaskID: 5, ChildID: "j"}, "detached start", "Job #5"},
		{ops.Span{Kind: ops.KindTimer, TaskID: 9}, "timer", "timer #9"},
	} {
		if k, l := kindLabel(c.s), spanLabel(c.s); k != c.kind || l != c.label {
			t.Errorf("%+v: %q %q, want %q %q", c.s, k, l, c.kind, c.label)
		}
	}
}
