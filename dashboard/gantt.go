package dashboard

import (
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/ops"
)

// The Gantt is drawn in inline SVG on a track ganttWidth units wide that
// the stylesheet stretches to the row: no script, no inline styles.
const (
	ganttWidth = 1000.0
	// minBarWidth keeps an instant (an event, a detached start, an activity
	// that took no time) visible.
	minBarWidth = 4.0
	// maxGanttRows bounds the rows drawn; a bigger history is cut.
	maxGanttRows = 2000
	ganttTicks   = 4
)

// gantt is a timeline laid out for drawing.
type gantt struct {
	Start time.Time
	Total time.Duration
	Rows  []ganttRow
	// Ticks label the time axis, from +0s to Total.
	Ticks []string
	// Hidden counts the spans left out beyond maxGanttRows.
	Hidden int
}

// ganttRow is one span and its bar.
type ganttRow struct {
	ops.Span
	// KindLabel names the kind for people; Label is the row's title.
	KindLabel, Label string
	// X and W place the bar on the track.
	X, W float64
	// Point: the span is an instant (events, detached starts).
	Point bool
	// Tip is the hover text of the row.
	Tip string
}

// layoutGantt places the spans on a common time axis. Pending spans run to
// now while their execution runs, and to the execution's end otherwise.
func layoutGantt(spans []ops.Span, now time.Time) *gantt {
	if len(spans) == 0 {
		return nil
	}
	g := &gantt{}
	var end time.Time
	running := false
	for i, s := range spans {
		if i == 0 || s.Start.Before(g.Start) {
			g.Start = s.Start
		}
		for _, t := range []time.Time{s.Start, s.End} {
			if t.After(end) {
				end = t
			}
		}
		if s.Kind == ops.KindExecution && s.Status == ops.StatusPending {
			running = true
		}
	}
	if running && now.After(end) {
		end = now
	}
	g.Total = end.Sub(g.Start)
	scale := g.Total
	if scale <= 0 {
		scale = time.Millisecond
	}
	for i := range ganttTicks + 1 {
		g.Ticks = append(g.Ticks, "+"+duration(g.Total*time.Duration(i)/ganttTicks))
	}
	if len(spans) > maxGanttRows {
		g.Hidden = len(spans) - maxGanttRows
		spans = spans[:maxGanttRows]
	}
	for _, s := range spans {
		stop := s.End
		if stop.IsZero() {
			stop = end
		}
		row := ganttRow{Span: s, KindLabel: kindLabel(s), Label: spanLabel(s),
			Point: s.Kind == ops.KindEvent || s.Kind == ops.KindDetached}
		row.X = float64(s.Start.Sub(g.Start)) / float64(scale) * ganttWidth
		row.W = max(float64(stop.Sub(s.Start))/float64(scale)*ganttWidth, minBarWidth)
		row.X = min(max(row.X, 0), ganttWidth-row.W)
		row.Tip = spanTip(row)
		g.Rows = append(g.Rows, row)
	}
	return g
}

func kindLabel(s ops.Span) string {
	switch s.Kind {
	case ops.KindSubOrchestration:
		return "sub-orchestration"
	case ops.KindEvent:
		if s.ChildID != "" {
			return "event sent"
		}
		return "event received"
	case ops.KindDetached:
		return "detached start"
	}
	return s.Kind
}

func spanLabel(s ops.Span) string {
	switch {
	case s.Kind == ops.KindTimer:
		return fmt.Sprintf("timer #%d", s.TaskID)
	case s.Kind == ops.KindExecution || s.Kind == ops.KindEvent && s.ChildID == "":
		return s.Name
	}
	return fmt.Sprintf("%s #%d", s.Name, s.TaskID)
}

// spanTip says in one line what happened: the hover text of a row.
func spanTip(r ganttRow) string {
	tip := fmt.Sprintf("%s %s: %s", r.KindLabel, r.Label, r.Status)
	if !r.End.IsZero() && !r.Point {
		tip += " after " + duration(r.Duration())
	}
	if r.Failure != nil {
		tip += " — " + failureLine(r.Failure)
	}
	return tip
}

func failureLine(f *core.Failure) string {
	if f.Type != "" {
		return f.Type + ": " + f.Message
	}
	return f.Message
}
