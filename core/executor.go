package core

import (
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// engineConfig is what every executor of a runtime shares.
type engineConfig struct {
	registry         *Registry
	codec            Codec
	logger           zerolog.Logger
	maxHistoryEvents int
	maxHistoryBytes  int64
	// tracing: the runtime emits spans, so episodes collect span records
	// and executions started without a trace start their own.
	tracing bool
}

// maxContinuesPerEpisode bounds continue-as-new loops that never wait.
const maxContinuesPerEpisode = 1000

// startTimerTask is the task id of the timer that delays a scheduled start;
// user tasks count from 1.
const startTimerTask = 0

// executor replays and runs one instance. It is the replay engine: it applies
// history events in order, runs the orchestration code as a coroutine between
// them, matches the actions the code takes against the recorded ones, and
// records new events and their side effects for the episode's commit.
// An executor is used by one goroutine at a time.
type executor struct {
	cfg        *engineConfig
	instanceID string

	// The current execution.
	executionID  string
	name         string
	version      string
	input        []byte
	parent       *ParentRef
	fn           OrchestratorFunc
	status       Status
	output       []byte
	failure      *Failure
	customStatus []byte
	started      bool // ExecutionStarted applied
	done         bool // the execution ended
	startedAt    time.Time
	trace        *TraceContext
	// timerCreated holds when pending timers were created, for their spans.
	timerCreated map[int64]time.Time

	seq          int64 // next history position
	historyBytes int64
	now          time.Time
	replaying    bool
	nextTask     int64
	guids        int64
	resolved     int64

	tasks     map[int64]*future // pending tasks by id, for completions
	waiters   map[string][]*future
	buffered  []*Event // raised events nobody waited for yet, in arrival order
	seenMsgs  map[string]struct{}
	suspended bool
	deferred  []*Event // events that arrived while suspended

	// Rows derived from history alone (not from the code), so that they stay
	// right even when the code diverges.
	timers   map[int64]TimerRow
	acts     map[int64]*ActivityTask
	children map[int64]string

	// Replay state.
	unmatched []*Event // actions the code took that history has not confirmed yet
	history   []*Event // the history being replayed (for IsPatched)
	replayPos int
	ndErr     *NonDeterminismError
	// replayed counts the history events replay has applied; an executor
	// continued from the cache applies none.
	replayed int64

	co        *coroutine
	ctx       *OrchestrationContext
	can       *continueAsNew
	continues int

	out       *episodeOut // nil while replaying
	partition int
}

// episodeOut is what one episode produced, for the commit.
type episodeOut struct {
	newExecution      bool
	history           []*Event
	timersAdded       []TimerRow
	timersRemoved     []TimerRow
	activitiesAdded   []*ActivityTask
	activitiesRemoved []*ActivityTask
	outbox            []*Message
	// cancelled activities that may be running on this host.
	cancelled []*ActivityTask
	// spans to emit once the commit has succeeded.
	spans []spanRecord
}

type continueAsNew struct {
	input   []byte
	version string
}

func newExecutor(cfg *engineConfig, instanceID string, partition int) *executor {
	e := &executor{cfg: cfg, instanceID: instanceID, partition: partition}
	e.resetExecution()
	return e
}

func (e *executor) resetExecution() {
	e.executionID, e.name, e.version, e.input, e.parent, e.fn = "", "", "", nil, nil, nil
	// A new execution starts without custom status: its replay could not
	// know the previous execution's.
	e.status, e.output, e.failure, e.customStatus = StatusPending, nil, nil, nil
	e.started, e.done = false, false
	e.startedAt, e.trace, e.timerCreated = time.Time{}, nil, nil
	e.seq, e.historyBytes = 0, 0
	e.nextTask, e.guids, e.resolved = 1, 0, 0
	e.tasks = map[int64]*future{}
	e.waiters = map[string][]*future{}
	e.buffered = nil
	e.seenMsgs = map[string]struct{}{}
	e.suspended, e.deferred = false, nil
	e.timers = map[int64]TimerRow{}
	e.acts = map[int64]*ActivityTask{}
	e.children = map[int64]string{}
	e.unmatched, e.can = nil, nil
	e.ctx = &OrchestrationContext{e: e}
}

// close stops the coroutine; the executor is not used afterwards.
func (e *executor) close() { e.kill() }

// replay applies the stored history of the current execution.
func (e *executor) replay(history []*Event) {
	e.replaying = true
	e.history, e.replayPos = history, 0
	for e.replayPos < len(history) {
		ev := history[e.replayPos]
		e.replayPos++
		e.replayed++
		e.seq = ev.Seq + 1
		e.historyBytes += int64(ev.Size())
		if e.ndErr != nil {
			e.track(ev, false)
			continue
		}
		e.replayEvent(ev)
	}
	if e.ndErr == nil && len(e.unmatched) > 0 {
		a := e.unmatched[0]
		e.nondeterminism(e.seq, a.TaskID, "the end of the recorded actions", describe(a))
	}
	e.history, e.replaying = nil, false
}

func (e *executor) replayEvent(ev *Event) {
	if ev.Kind.isScheduling() || ev.Kind == EventExecutionCompleted || ev.Kind == EventContinuedAsNew {
		e.matchAction(ev)
		return
	}
	if len(e.unmatched) > 0 {
		a := e.unmatched[0]
		e.nondeterminism(ev.Seq, a.TaskID, "no action before "+describe(ev), describe(a))
		return
	}
	e.track(ev, false)
	e.apply(ev)
	e.step()
}

func (e *executor) matchAction(h *Event) {
	if len(e.unmatched) == 0 {
		if h.Kind == EventExecutionCompleted || h.Kind == EventContinuedAsNew {
			// Ended by the engine (history cap, non-determinism), not by the code.
			e.track(h, false)
			e.finish(h.Status, h.Data, h.Failure)
			return
		}
		e.nondeterminism(h.Seq, h.TaskID, describe(h), "nothing (the code did not take this action)")
		return
	}
	a := e.unmatched[0]
	if a.Kind != h.Kind || a.TaskID != h.TaskID || a.Name != h.Name || a.InstanceID != h.InstanceID ||
		(a.Kind == EventExecutionCompleted && a.Status != h.Status) {
		e.nondeterminism(h.Seq, h.TaskID, describe(h), describe(a))
		return
	}
	e.unmatched = e.unmatched[1:]
	if h.Kind == EventExecutionCompleted {
		// The recorded end is the truth: a panic's stack, for one, differs on every run.
		e.output, e.failure = h.Data, h.Failure
	}
	e.track(h, false)
}

func (e *executor) nondeterminism(seq, task int64, recorded, actual string) {
	e.ndErr = &NonDeterminismError{InstanceID: e.instanceID, Seq: seq, TaskID: task, Recorded: recorded, Actual: actual}
	e.kill()
}

func describe(ev *Event) string {
	switch ev.Kind {
	case EventActivityScheduled, EventSubOrchestrationScheduled, EventDetachedStarted, EventEventSent, EventPatched:
		return fmt.Sprintf("%s %q (task %d)", ev.Kind, ev.Name, ev.TaskID)
	case EventTimerCreated:
		return fmt.Sprintf("%s (task %d, fires %s)", ev.Kind, ev.TaskID, ev.FireAt.UTC().Format(time.RFC3339Nano))
	case EventTaskCanceled:
		return fmt.Sprintf("%s (task %d)", ev.Kind, ev.TaskID)
	case EventExecutionCompleted:
		return fmt.Sprintf("%s (%s)", ev.Kind, ev.Status)
	}
	return ev.Kind.String()
}

// episode runs one episode over new messages and returns what to commit.
// When every message is a duplicate or no longer applies, the episode is
// empty (no history) and there is nothing to commit.
func (e *executor) episode(now time.Time, msgs []*Message) *episodeOut {
	e.out = &episodeOut{}
	e.continues = 0
	e.now = now
	opened := false
	open := func() {
		if !opened {
			opened = true
			e.record(&Event{Kind: EventEpisodeStarted, Time: now})
		}
	}
	if e.ndErr != nil {
		open()
		e.fail(e.ndErr)
		return e.takeOut()
	}
	for _, m := range msgs {
		if e.done {
			break
		}
		ev := e.accept(m)
		if ev == nil {
			continue
		}
		open()
		e.record(ev)
		e.apply(ev)
		e.step()
	}
	if !e.done && e.overCap() {
		e.fail(fmt.Errorf("%w: instance %q has %d history events (%d bytes), over the cap of %d events / %d bytes; "+
			"use ContinueAsNew to start a fresh history", ErrHistoryTooLarge, e.instanceID, e.seq, e.historyBytes,
			e.cfg.maxHistoryEvents, e.cfg.maxHistoryBytes))
	}
	return e.takeOut()
}

func (e *executor) takeOut() *episodeOut {
	out := e.out
	e.out = nil
	return out
}

func (e *executor) overCap() bool {
	return (e.cfg.maxHistoryEvents > 0 && e.seq > int64(e.cfg.maxHistoryEvents)) ||
		(e.cfg.maxHistoryBytes > 0 && e.historyBytes > e.cfg.maxHistoryBytes)
}

// accept turns a message into the event to record, or nil for a duplicate or
// a message that no longer applies.
func (e *executor) accept(m *Message) *Event {
	ev := *m.Event
	ev.Seq = 0
	if ev.Kind != EventExecutionStarted && m.ExecutionID != "" && e.started && m.ExecutionID != e.executionID {
		return nil // for an execution that has ended
	}
	switch ev.Kind {
	case EventExecutionStarted:
		if e.started {
			return nil
		}
		_, ver, err := e.cfg.registry.orchestration(ev.Name, ev.Version)
		if err == nil {
			ev.Version = ver
		}
		if ev.Trace == nil && e.cfg.tracing {
			ev.Trace = newTraceContext(trace.SpanContext{}, e.instanceID, ev.ExecutionID)
		}
		// Recorded, and carried across continue-as-new in Seen, so that the
		// start delivered again after the instance has ended is known.
		if ev.MessageID == "" {
			ev.MessageID = m.ID
		}
	case EventActivityCompleted, EventActivityFailed, EventTimerFired, EventSubOrchestrationCompleted, EventSubOrchestrationFailed:
		if !e.started || !e.isPending(ev.Kind, ev.TaskID) {
			return nil
		}
	case EventEventRaised, EventExecutionSuspended, EventExecutionResumed:
		// Dropped by message id: a suspend delivered again after the resume
		// that followed it must not suspend the instance again.
		if ev.MessageID == "" {
			ev.MessageID = m.ID
		}
		if _, dup := e.seenMsgs[ev.MessageID]; dup {
			return nil
		}
		if ev.Kind == EventExecutionSuspended && e.suspended || ev.Kind == EventExecutionResumed && !e.suspended {
			return nil
		}
	case EventExecutionTerminated:
	default:
		return nil // not an input kind
	}
	if !e.started && ev.Kind != EventExecutionStarted {
		return nil
	}
	return &ev
}

func (e *executor) isPending(kind EventKind, task int64) bool {
	switch kind {
	case EventActivityCompleted, EventActivityFailed:
		_, ok := e.acts[task]
		return ok
	case EventTimerFired:
		_, ok := e.timers[task]
		return ok
	default:
		_, ok := e.children[task]
		return ok
	}
}

// record appends a new event to the episode's history and its side effects
// to the episode's output.
func (e *executor) record(ev *Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now
	}
	ev.Seq = e.seq
	e.seq++
	e.historyBytes += int64(ev.Size())
	e.out.history = append(e.out.history, ev)
	e.track(ev, true)
}

// emit is how the code (and engine callbacks) take an action: recorded when
// live, matched against history when replaying.
func (e *executor) emit(ev *Event) {
	if e.co != nil && e.co.exiting {
		return
	}
	if e.replaying {
		ev.Time = e.now
		e.unmatched = append(e.unmatched, ev)
		return
	}
	e.record(ev)
}

// track keeps the pending rows in step with history and, when live, lists the
// row changes and messages for the commit.
func (e *executor) track(ev *Event, live bool) {
	switch ev.Kind {
	case EventExecutionStarted:
		e.executionID = ev.ExecutionID
		e.startedAt, e.trace = ev.Time, ev.Trace
		consumedBy(ev, e.seen)
	case EventActivityScheduled:
		t := &ActivityTask{Partition: e.partition, InstanceID: e.instanceID, ExecutionID: e.executionID, TaskID: ev.TaskID,
			Name: ev.Name, Version: ev.Version, Input: ev.Data, ScheduledAt: ev.Time, Trace: e.trace}
		e.acts[ev.TaskID] = t
		if live {
			e.out.activitiesAdded = append(e.out.activitiesAdded, t)
		}
	case EventActivityCompleted, EventActivityFailed:
		e.dropActivity(ev.TaskID, live, false)
	case EventTimerCreated:
		r := TimerRow{InstanceID: e.instanceID, ExecutionID: e.executionID, TaskID: ev.TaskID, FireAt: ev.FireAt}
		e.timers[ev.TaskID] = r
		if live {
			e.out.timersAdded = append(e.out.timersAdded, r)
		}
		if e.traced() {
			if e.timerCreated == nil {
				e.timerCreated = map[int64]time.Time{}
			}
			e.timerCreated[ev.TaskID] = ev.Time
		}
	case EventTimerFired:
		if live && e.traced() {
			e.out.spans = append(e.out.spans, spanRecord{trace: e.trace, timer: true, instanceID: e.instanceID,
				executionID: e.executionID, taskID: ev.TaskID, start: e.timerCreated[ev.TaskID], end: ev.Time, fireAt: ev.FireAt})
		}
		delete(e.timerCreated, ev.TaskID)
		e.dropTimer(ev.TaskID, live)
	case EventSubOrchestrationScheduled:
		e.children[ev.TaskID] = ev.InstanceID
		if live {
			e.send(ev.TaskID, ev.InstanceID, "", &Event{Kind: EventExecutionStarted, Name: ev.Name, Version: ev.Version,
				Data: ev.Data, ExecutionID: ev.ExecutionID, Trace: e.trace.child(ev.InstanceID, ev.ExecutionID),
				Parent: &ParentRef{InstanceID: e.instanceID, ExecutionID: e.executionID, TaskID: ev.TaskID, Name: e.name}})
		}
	case EventSubOrchestrationCompleted, EventSubOrchestrationFailed:
		delete(e.children, ev.TaskID)
	case EventEventSent:
		if live {
			id := e.messageID(ev.TaskID)
			e.send(ev.TaskID, ev.InstanceID, "", &Event{Kind: EventEventRaised, Name: ev.Name, Data: ev.Data, MessageID: id})
		}
	case EventDetachedStarted:
		if live {
			e.send(ev.TaskID, ev.InstanceID, "", &Event{Kind: EventExecutionStarted, Name: ev.Name, Version: ev.Version,
				Data: ev.Data, ExecutionID: ev.ExecutionID, Trace: e.trace.child(ev.InstanceID, ev.ExecutionID)})
		}
	case EventEventRaised, EventExecutionSuspended, EventExecutionResumed:
		consumedBy(ev, e.seen)
	case EventTaskCanceled:
		switch {
		case e.timers[ev.TaskID] != (TimerRow{}):
			e.dropTimer(ev.TaskID, live)
		case e.acts[ev.TaskID] != nil:
			e.dropActivity(ev.TaskID, live, true)
		case e.children[ev.TaskID] != "":
			child := e.children[ev.TaskID]
			delete(e.children, ev.TaskID)
			if live {
				e.send(ev.TaskID, child, "", &Event{Kind: EventExecutionTerminated, Reason: "cancelled by parent", Recursive: true})
			}
		}
	case EventExecutionCompleted, EventContinuedAsNew, EventExecutionTerminated:
		e.dropAllRows(live, ev.Kind == EventExecutionTerminated && ev.Recursive, ev.Reason)
		if live && e.parent != nil && ev.Kind != EventContinuedAsNew {
			e.notifyParent(ev)
		}
		if live && e.traced() {
			e.out.spans = append(e.out.spans, e.executionSpan(ev))
		}
	}
}

// traced reports whether the episode collects span records.
func (e *executor) traced() bool { return e.cfg.tracing && e.trace != nil }

// executionSpan is the span record of the execution that ev ends.
func (e *executor) executionSpan(ev *Event) spanRecord {
	rec := spanRecord{trace: e.trace, instanceID: e.instanceID, executionID: e.executionID, name: e.name,
		version: e.version, start: e.startedAt, end: ev.Time, status: ev.Status, failure: ev.Failure}
	switch ev.Kind {
	case EventExecutionTerminated:
		rec.status = StatusTerminated
	case EventContinuedAsNew:
		rec.status = StatusContinuedAsNew
	}
	return rec
}

func (e *executor) seen(id string) { e.seenMsgs[id] = struct{}{} }

// consumedBy names the ids of the messages ev records as consumed: a start's
// own and those it inherited (Seen), an event's, a suspend's or a resume's.
// Duplicates of them are dropped, across continue-as-new and restarts too.
func consumedBy(ev *Event, add func(id string)) {
	switch ev.Kind {
	case EventExecutionStarted:
		for _, id := range ev.Seen {
			add(id)
		}
	case EventEventRaised, EventExecutionSuspended, EventExecutionResumed:
	default:
		return
	}
	if ev.MessageID != "" {
		add(ev.MessageID)
	}
}

func (e *executor) dropActivity(task int64, live, cancelled bool) {
	t := e.acts[task]
	if t == nil {
		return
	}
	delete(e.acts, task)
	if !live {
		return
	}
	if i := slices.Index(e.out.activitiesAdded, t); i >= 0 {
		e.out.activitiesAdded = slices.Delete(e.out.activitiesAdded, i, i+1)
		return
	}
	e.out.activitiesRemoved = append(e.out.activitiesRemoved, t)
	if cancelled {
		e.out.cancelled = append(e.out.cancelled, t)
	}
}

func (e *executor) dropTimer(task int64, live bool) {
	r, ok := e.timers[task]
	if !ok {
		return
	}
	delete(e.timers, task)
	if !live {
		return
	}
	if i := slices.Index(e.out.timersAdded, r); i >= 0 {
		e.out.timersAdded = slices.Delete(e.out.timersAdded, i, i+1)
		return
	}
	e.out.timersRemoved = append(e.out.timersRemoved, r)
}

func (e *executor) dropAllRows(live, terminateChildren bool, reason string) {
	for _, task := range slices.Sorted(maps.Keys(e.timers)) {
		e.dropTimer(task, live)
	}
	for _, task := range slices.Sorted(maps.Keys(e.acts)) {
		e.dropActivity(task, live, true)
	}
	for _, task := range slices.Sorted(maps.Keys(e.children)) {
		if live && terminateChildren {
			e.send(task, e.children[task], "", &Event{Kind: EventExecutionTerminated, Reason: reason, Recursive: true})
		}
		delete(e.children, task)
	}
}

func (e *executor) notifyParent(end *Event) {
	p := e.parent
	ev := &Event{TaskID: p.TaskID}
	switch {
	case end.Kind == EventExecutionCompleted && end.Status == StatusCompleted:
		ev.Kind, ev.Data = EventSubOrchestrationCompleted, end.Data
	case end.Kind == EventExecutionTerminated:
		ev.Kind = EventSubOrchestrationFailed
		ev.Failure = &Failure{Kind: KindApplication, Type: FailureTypeTerminated, Message: "terminated: " + end.Reason}
	default:
		ev.Kind, ev.Failure = EventSubOrchestrationFailed, end.Failure
	}
	e.sendTo(deterministicID(e.instanceID, e.executionID, "done"), p.InstanceID, p.ExecutionID, ev)
}

func (e *executor) messageID(task int64) string {
	return deterministicID(e.instanceID, e.executionID, "msg", fmt.Sprint(task))
}

func (e *executor) send(task int64, instanceID, executionID string, ev *Event) {
	e.sendTo(e.messageID(task)+"/"+ev.Kind.String(), instanceID, executionID, ev)
}

func (e *executor) sendTo(id, instanceID, executionID string, ev *Event) {
	ev.Seq = -1
	ev.Time = e.now
	e.out.outbox = append(e.out.outbox, &Message{ID: id, InstanceID: instanceID, ExecutionID: executionID, Event: ev})
}

// apply changes the execution's state for an input event (live or replayed).
func (e *executor) apply(ev *Event) {
	if e.suspended && ev.Kind != EventExecutionResumed && ev.Kind != EventExecutionTerminated && ev.Kind != EventEpisodeStarted {
		e.deferred = append(e.deferred, ev)
		return
	}
	switch ev.Kind {
	case EventEpisodeStarted:
		e.now = ev.Time
	case EventExecutionStarted:
		e.startExecution(ev)
	case EventActivityCompleted, EventTimerFired, EventSubOrchestrationCompleted:
		if f := e.tasks[ev.TaskID]; f != nil {
			delete(e.tasks, ev.TaskID)
			f.resolve(ev.Data, nil)
		}
	case EventActivityFailed:
		if f := e.tasks[ev.TaskID]; f != nil {
			delete(e.tasks, ev.TaskID)
			f.resolve(nil, &ActivityError{Name: f.name(), TaskID: ev.TaskID, Err: ev.Failure.AsError()})
		}
	case EventSubOrchestrationFailed:
		if f := e.tasks[ev.TaskID]; f != nil {
			delete(e.tasks, ev.TaskID)
			f.resolve(nil, &SubOrchestrationError{Name: f.name(), InstanceID: e.childOf(f), TaskID: ev.TaskID, Err: ev.Failure.AsError()})
		}
	case EventEventRaised:
		if ws := e.waiters[ev.Name]; len(ws) > 0 {
			e.waiters[ev.Name] = ws[1:]
			ws[0].resolve(ev.Data, nil)
		} else {
			e.buffered = append(e.buffered, ev)
		}
	case EventExecutionSuspended:
		e.suspended, e.status = true, StatusSuspended
	case EventExecutionResumed:
		e.suspended, e.status = false, StatusRunning
		if e.fn == nil {
			e.status = StatusPending
		}
		// Take the held events one at a time, so that when one of them ends
		// the execution, the rest stay in e.deferred: continue-as-new
		// carries them to the new execution, and nothing reaches an
		// execution that has ended.
		for len(e.deferred) > 0 && !e.suspended && !e.done {
			h := e.deferred[0]
			e.deferred = e.deferred[1:]
			e.apply(h)
			e.step()
		}
	case EventExecutionTerminated:
		e.kill()
		out, _ := e.cfg.codec.Marshal(ev.Reason)
		e.finish(StatusTerminated, out, nil)
	}
}

func (e *executor) childOf(f *future) string {
	if f.task != nil {
		return f.task.InstanceID
	}
	return ""
}

func (e *executor) startExecution(ev *Event) {
	e.started = true
	e.executionID, e.name, e.version, e.input, e.parent = ev.ExecutionID, ev.Name, ev.Version, ev.Data, ev.Parent
	if !ev.ScheduledStart.IsZero() && e.now.Before(ev.ScheduledStart) {
		f := e.scheduleTimer(startTimerTask, ev.ScheduledStart)
		f.onDone(e.beginCode)
		return
	}
	e.beginCode()
}

func (e *executor) beginCode() {
	fn, _, err := e.cfg.registry.orchestration(e.name, e.version)
	if err != nil {
		e.fail(err)
		return
	}
	e.fn = fn
	e.status = StatusRunning
	e.co = newCoroutine(func() ([]byte, error) { return e.fn(e.ctx, e.input) })
}

// step resumes the code when what it waits for is done, and handles its end.
func (e *executor) step() {
	for e.co != nil && !e.done {
		co := e.co
		if co.finished || (co.waitingOn != nil && !co.waitingOn.done) {
			return
		}
		co.resumeOnce()
		if !co.finished {
			return
		}
		e.codeFinished(co.output, co.err)
	}
}

func (e *executor) codeFinished(output []byte, err error) {
	switch {
	case err != nil:
		f := userFailure(err)
		e.emit(&Event{Kind: EventExecutionCompleted, Status: StatusFailed, Failure: f})
		e.finish(StatusFailed, nil, f)
	case e.can != nil:
		e.continueAsNew()
	default:
		e.emit(&Event{Kind: EventExecutionCompleted, Status: StatusCompleted, Data: output})
		e.finish(StatusCompleted, output, nil)
	}
}

// finish ends the execution.
func (e *executor) finish(status Status, output []byte, failure *Failure) {
	e.kill()
	e.done, e.status, e.output, e.failure = true, status, output, failure
	for _, f := range e.tasks {
		f.callbacks = nil
	}
}

// fail ends the execution with an engine-detected failure.
func (e *executor) fail(err error) {
	e.kill()
	f := NewFailure(err)
	if e.out != nil {
		e.record(&Event{Kind: EventExecutionCompleted, Status: StatusFailed, Failure: f})
	}
	e.finish(StatusFailed, nil, f)
}

func (e *executor) kill() {
	if e.co != nil {
		e.co.kill()
		e.co = nil
	}
}

func (e *executor) continueAsNew() {
	can := e.can
	e.emit(&Event{Kind: EventContinuedAsNew, Data: can.input, Version: can.version})
	if e.replaying {
		e.finish(StatusContinuedAsNew, nil, nil)
		return
	}
	e.continues++
	if e.continues > maxContinuesPerEpisode {
		e.fail(fmt.Errorf("%w: instance %q continued as new %d times in one episode without waiting for anything",
			ErrInvalidInput, e.instanceID, maxContinuesPerEpisode))
		return
	}
	carried := append(slices.Clone(e.buffered), e.deferred...)
	name, parent, now, tc := e.name, e.parent, e.now, e.trace
	version := can.version
	if version == "" {
		version = e.version
	}
	newExec := deterministicID(e.instanceID, e.executionID, "continue")
	// A message this execution consumed may be delivered again after the
	// new execution starts (a crash between commit and delete, or an outbox
	// re-sent after a fail-over): the new execution remembers the ids.
	seen := slices.Sorted(maps.Keys(e.seenMsgs))
	out := e.out
	e.resetExecution()
	e.out = out
	out.newExecution = true
	out.history = nil
	e.now = now
	e.record(&Event{Kind: EventEpisodeStarted, Time: now})
	start := &Event{Kind: EventExecutionStarted, Name: name, Version: version, Data: can.input, ExecutionID: newExec, Parent: parent, Seen: seen,
		Trace: tc.next(e.instanceID, newExec)}
	e.record(start)
	e.apply(start)
	e.step()
	for _, ev := range carried {
		if e.done {
			break
		}
		c := *ev
		e.record(&c)
		e.apply(&c)
		e.step()
	}
}

// The actions the code can take.

func (e *executor) newTaskID() int64 {
	id := e.nextTask
	e.nextTask++
	return id
}

func (e *executor) scheduleActivity(name, version string, input []byte) *future {
	id := e.newTaskID()
	f := e.newTask(id, &Event{Kind: EventActivityScheduled, TaskID: id, Name: name, Version: version})
	e.emit(&Event{Kind: EventActivityScheduled, TaskID: id, Name: name, Version: version, Data: input})
	return f
}

func (e *executor) scheduleTimer(id int64, fireAt time.Time) *future {
	f := e.newTask(id, &Event{Kind: EventTimerCreated, TaskID: id})
	e.emit(&Event{Kind: EventTimerCreated, TaskID: id, FireAt: fireAt})
	return f
}

func (e *executor) scheduleSubOrchestration(name, version, instanceID string, input []byte) *future {
	id := e.newTaskID()
	exec := deterministicID(e.instanceID, e.executionID, "child", fmt.Sprint(id))
	f := e.newTask(id, &Event{Kind: EventSubOrchestrationScheduled, TaskID: id, Name: name, InstanceID: instanceID})
	e.emit(&Event{Kind: EventSubOrchestrationScheduled, TaskID: id, Name: name, Version: version, InstanceID: instanceID,
		ExecutionID: exec, Data: input})
	return f
}

// newTask registers a pending task's future; Cancel records TaskCanceled.
func (e *executor) newTask(id int64, desc *Event) *future {
	f := e.newFuture()
	f.task = desc
	e.tasks[id] = f
	f.cancel = func() {
		if f.done {
			return
		}
		delete(e.tasks, id)
		e.emit(&Event{Kind: EventTaskCanceled, TaskID: id, Name: desc.Name})
		f.resolve(nil, fmt.Errorf("%s: %w", describe(desc), ErrCanceled))
	}
	return f
}

func (e *executor) waitForEvent(name string) *future {
	f := e.newFuture()
	for i, ev := range e.buffered {
		if ev.Name == name {
			e.buffered = slices.Delete(e.buffered, i, i+1)
			f.resolve(ev.Data, nil)
			return f
		}
	}
	e.waiters[name] = append(e.waiters[name], f)
	f.cancel = func() {
		if i := slices.Index(e.waiters[name], f); i >= 0 {
			e.waiters[name] = slices.Delete(e.waiters[name], i, i+1)
		}
		f.resolve(nil, fmt.Errorf("wait for event %q: %w", name, ErrCanceled))
	}
	return f
}

func (e *executor) isPatched(name string) bool {
	if e.replaying {
		i := e.replayPos + len(e.unmatched)
		if i >= len(e.history) {
			return false
		}
		h := e.history[i]
		if h.Kind != EventPatched || h.Name != name {
			return false
		}
	}
	e.emit(&Event{Kind: EventPatched, TaskID: e.newTaskID(), Name: name})
	return true
}

// await blocks the coroutine until f is done.
func (e *executor) await(f *future) {
	if e.co == nil {
		panic("core: Await called outside a running orchestration")
	}
	e.co.await(f)
}

// coroutine runs orchestration code on its own goroutine, handing control
// back and forth with the engine so that exactly one of them runs at a time.
type coroutine struct {
	run       func() ([]byte, error)
	resume    chan bool
	yield     chan struct{}
	waitingOn *future
	finished  bool
	exiting   bool
	output    []byte
	err       error
}

type exitSignal struct{}

// idleCoroutines hands a new coroutine to a goroutine that has finished
// running another one. Orchestration code grows a goroutine's stack at once
// (the codec alone goes deep); a reused goroutine has it grown already.
var idleCoroutines = make(chan *coroutine)

// coroutineIdle is how long a goroutine waits for another coroutine before it exits.
const coroutineIdle = 10 * time.Second

func newCoroutine(run func() ([]byte, error)) *coroutine {
	co := &coroutine{run: run, resume: make(chan bool), yield: make(chan struct{})}
	select {
	case idleCoroutines <- co:
	default:
		go runCoroutines(co)
	}
	return co
}

// runCoroutines runs co, then the coroutines handed to it, until none comes
// for coroutineIdle. Its profiler labels say only that it runs orchestration
// code: which partition's changes from one coroutine to the next.
func runCoroutines(co *coroutine) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("kind", "orchestration")))
	idle := time.NewTimer(coroutineIdle)
	defer idle.Stop()
	for {
		co.body()
		idle.Reset(coroutineIdle)
		select {
		case co = <-idleCoroutines:
		case <-idle.C:
			return
		}
	}
}

// body runs the orchestration code once resumed, and reports its end.
func (co *coroutine) body() {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitSignal); !ok {
				co.err = &PanicError{Value: fmt.Sprint(r), Stack: string(debug.Stack())}
			}
		}
		// The goroutine outlives the coroutine: keep no reference to the executor.
		co.run = nil
		co.finished = true
		co.yield <- struct{}{}
	}()
	if !<-co.resume {
		panic(exitSignal{})
	}
	co.output, co.err = co.run()
}

func (co *coroutine) resumeOnce() {
	co.resume <- true
	<-co.yield
}

func (co *coroutine) await(f *future) {
	for !f.done {
		if co.exiting {
			panic(exitSignal{})
		}
		co.waitingOn = f
		co.yield <- struct{}{}
		if !<-co.resume {
			co.exiting = true
			panic(exitSignal{})
		}
	}
	co.waitingOn = nil
}

// kill unwinds the coroutine's goroutine.
func (co *coroutine) kill() {
	if co.finished {
		return
	}
	co.exiting = true
	co.resume <- false
	<-co.yield
}

// pendingTimers is the complete set of pending timer rows, ordered by task.
func (e *executor) pendingTimers() []TimerRow {
	out := make([]TimerRow, 0, len(e.timers))
	for _, t := range slices.Sorted(maps.Keys(e.timers)) {
		out = append(out, e.timers[t])
	}
	return out
}

// pendingActivities is the complete set of dispatched activities, ordered by task.
func (e *executor) pendingActivities() []*ActivityTask {
	out := make([]*ActivityTask, 0, len(e.acts))
	for _, t := range slices.Sorted(maps.Keys(e.acts)) {
		out = append(out, e.acts[t])
	}
	return out
}
