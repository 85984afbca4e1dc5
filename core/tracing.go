package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TraceContext ties an execution to a distributed trace (W3C Trace Context
// ids, in hex). It is chosen when the execution is created and stored with
// its ExecutionStarted event, so every host that replays the execution knows
// the id of the execution's span long before that span is emitted (at the
// execution's end): the spans of its activities, timers and
// sub-orchestrations name it as their parent, whichever host runs them.
type TraceContext struct {
	TraceID string `json:"tid"`
	// SpanID is the id of the execution's own span.
	SpanID string `json:"sid"`
	// ParentSpanID is the span the execution belongs under: the caller's
	// span that started it, or the parent orchestration's. Empty for a root.
	ParentSpanID string `json:"psid,omitempty"`
	// Sampled is the trace's W3C sampled flag.
	Sampled bool `json:"smp,omitempty"`
}

// executionSpanID derives the span id of an execution from its ids, so that
// an episode run again after a failed commit picks the same one.
func executionSpanID(instanceID, executionID string) trace.SpanID {
	var id trace.SpanID
	h := sha256.Sum256([]byte(deterministicID(instanceID, executionID, "span")))
	copy(id[:], h[:])
	if !id.IsValid() {
		id[7] = 1
	}
	return id
}

// newTraceContext is the trace of a new execution under parent; without a
// valid parent, the execution starts its own trace.
func newTraceContext(parent trace.SpanContext, instanceID, executionID string) *TraceContext {
	tc := &TraceContext{SpanID: executionSpanID(instanceID, executionID).String(), Sampled: true}
	if parent.IsValid() {
		tc.TraceID, tc.ParentSpanID, tc.Sampled = parent.TraceID().String(), parent.SpanID().String(), parent.IsSampled()
		return tc
	}
	var tid trace.TraceID
	h := sha256.Sum256([]byte(deterministicID(instanceID, executionID, "trace")))
	copy(tid[:], h[:])
	tc.TraceID = tid.String()
	return tc
}

// child is the trace of an execution started by this one (a sub-orchestration
// or a detached instance); nil without a trace.
func (t *TraceContext) child(instanceID, executionID string) *TraceContext {
	if t == nil {
		return nil
	}
	return &TraceContext{TraceID: t.TraceID, ParentSpanID: t.SpanID, Sampled: t.Sampled,
		SpanID: executionSpanID(instanceID, executionID).String()}
}

// next is the trace of the execution that continues this one as new: a
// sibling under the same parent, so that an eternal orchestration does not
// nest deeper with every execution.
func (t *TraceContext) next(instanceID, executionID string) *TraceContext {
	if t == nil {
		return nil
	}
	n := *t
	n.SpanID = executionSpanID(instanceID, executionID).String()
	return &n
}

// spanContext is the execution's span as a remote parent; false when the
// stored ids do not parse.
func (t *TraceContext) spanContext() (trace.SpanContext, bool) {
	return t.remote(t.SpanID)
}

func (t *TraceContext) remote(span string) (trace.SpanContext, bool) {
	tid, err := trace.TraceIDFromHex(t.TraceID)
	if err != nil {
		return trace.SpanContext{}, false
	}
	sid, err := trace.SpanIDFromHex(span)
	if err != nil {
		return trace.SpanContext{}, false
	}
	var flags trace.TraceFlags
	if t.Sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}), true
}

// presetIDsKey carries the ids the next span started with the context must
// get; TraceIDGenerator honours it.
type presetIDsKey struct{}

type presetIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

// TraceIDGenerator is the id generator to install in the OpenTelemetry SDK
// (sdktrace.WithIDGenerator) of a runtime that emits spans. An execution's
// span is emitted when the execution ends, possibly on another host than the
// one that started it, yet its activities and timers name it as their parent
// from the start; this generator gives the execution's span the id chosen
// when the execution was created (stored in its history). Every other span
// gets random ids, as with the SDK's default generator.
type TraceIDGenerator struct{}

// NewIDs returns the preset ids if the context carries them, random ones otherwise.
func (TraceIDGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if p, ok := ctx.Value(presetIDsKey{}).(presetIDs); ok {
		return p.trace, p.span
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	return tid, randomSpanID()
}

// NewSpanID returns the preset span id if the context carries one for this
// trace, a random one otherwise.
func (TraceIDGenerator) NewSpanID(ctx context.Context, traceID trace.TraceID) trace.SpanID {
	if p, ok := ctx.Value(presetIDsKey{}).(presetIDs); ok && p.trace == traceID {
		return p.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}

// Span attribute keys.
const (
	AttrInstanceID     = attribute.Key("azdurable.instance.id")
	AttrExecutionID    = attribute.Key("azdurable.execution.id")
	AttrName           = attribute.Key("azdurable.name")
	AttrVersion        = attribute.Key("azdurable.version")
	AttrStatus         = attribute.Key("azdurable.status")
	AttrTaskID         = attribute.Key("azdurable.task.id")
	AttrFireAt         = attribute.Key("azdurable.timer.fire_at")
	AttrScheduledAt    = attribute.Key("azdurable.activity.scheduled_at")
	AttrPartition      = attribute.Key("azdurable.partition")
	AttrHost           = attribute.Key("azdurable.host")
	instrumentationLib = "github.com/azdurable/azdurable"
)

// spanRecord is a span the engine found in an episode's new events, emitted
// once the episode's commit has succeeded: an execution that ended, or a
// timer that fired. Replayed events never make records, so replays emit nothing.
type spanRecord struct {
	trace       *TraceContext
	timer       bool
	instanceID  string
	executionID string
	name        string
	version     string
	taskID      int64
	start, end  time.Time
	fireAt      time.Time
	status      Status
	failure     *Failure
}

// tracing emits a runtime's spans; nil when the runtime has no tracer provider.
type tracing struct {
	tracer trace.Tracer
	host   string
	log    zerolog.Logger
	warned atomic.Bool
}

func newTracing(tp trace.TracerProvider, host string, log zerolog.Logger) *tracing {
	if tp == nil {
		return nil
	}
	return &tracing{tracer: tp.Tracer(instrumentationLib), host: host, log: log}
}

// emit sends the spans of committed episodes.
func (t *tracing) emit(partition int, recs []spanRecord) {
	for i := range recs {
		rec := &recs[i]
		if rec.timer {
			t.emitTimer(partition, rec)
		} else {
			t.emitExecution(partition, rec)
		}
	}
}

func (t *tracing) emitExecution(partition int, rec *spanRecord) {
	tc := rec.trace
	own, ok := tc.spanContext()
	if !ok {
		return
	}
	ctx := context.Background()
	if tc.ParentSpanID != "" {
		if parent, ok := tc.remote(tc.ParentSpanID); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
		}
	}
	ctx = context.WithValue(ctx, presetIDsKey{}, presetIDs{trace: own.TraceID(), span: own.SpanID()})
	_, span := t.tracer.Start(ctx, "orchestration "+rec.name, trace.WithTimestamp(rec.start),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			AttrInstanceID.String(rec.instanceID), AttrExecutionID.String(rec.executionID),
			AttrName.String(rec.name), AttrVersion.String(rec.version), AttrStatus.String(rec.status.String()),
			AttrPartition.Int(partition), AttrHost.String(t.host)))
	if sc := span.SpanContext(); sc.IsValid() && sc.SpanID() != own.SpanID() && t.warned.CompareAndSwap(false, true) {
		t.log.Warn().Msg("tracing: orchestration spans do not get the ids their activities and timers point to; " +
			"install core.TraceIDGenerator in the SDK's TracerProvider (sdktrace.WithIDGenerator)")
	}
	if rec.status == StatusFailed {
		msg := "failed"
		if rec.failure != nil {
			msg = rec.failure.Error()
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End(trace.WithTimestamp(rec.end))
}

func (t *tracing) emitTimer(partition int, rec *spanRecord) {
	parent, ok := rec.trace.spanContext()
	if !ok {
		return
	}
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	_, span := t.tracer.Start(ctx, "timer", trace.WithTimestamp(rec.start), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(AttrInstanceID.String(rec.instanceID), AttrExecutionID.String(rec.executionID),
			AttrTaskID.Int64(rec.taskID), AttrFireAt.String(rec.fireAt.UTC().Format(time.RFC3339Nano)),
			AttrPartition.Int(partition), AttrHost.String(t.host)))
	span.End(trace.WithTimestamp(rec.end))
}

// startActivity starts the span of one activity attempt, a child of its
// orchestration's span; the activity's context carries it, so that what the
// activity calls joins the trace.
func (t *tracing) startActivity(ctx context.Context, task *ActivityTask) (context.Context, trace.Span) {
	if t == nil || task.Trace == nil {
		return ctx, nil
	}
	if parent, ok := task.Trace.spanContext(); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return t.tracer.Start(ctx, "activity "+task.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(AttrInstanceID.String(task.InstanceID), AttrExecutionID.String(task.ExecutionID),
			AttrName.String(task.Name), AttrVersion.String(task.Version), AttrTaskID.Int64(task.TaskID),
			AttrScheduledAt.String(task.ScheduledAt.UTC().Format(time.RFC3339Nano)),
			AttrPartition.Int(task.Partition), AttrHost.String(t.host)))
}

// endSpan ends a span with the outcome of what it covered.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// size approximates the stored size of a trace context.
func (t *TraceContext) size() int {
	if t == nil {
		return 0
	}
	return 40 + len(t.TraceID) + len(t.SpanID) + len(t.ParentSpanID)
}
