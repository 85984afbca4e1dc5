package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// EventKind is the type of a history event.
type EventKind uint8

// The history event kinds. Their names (not their numbers) are the stored
// form, so new kinds may be added anywhere.
const (
	// EventEpisodeStarted opens every episode and carries its deterministic time (ctx.Now()).
	EventEpisodeStarted EventKind = iota + 1
	// EventExecutionStarted starts an execution: Name, Version, Data (input), ExecutionID, Parent, ScheduledStart, Trace.
	EventExecutionStarted
	// EventExecutionCompleted ends an execution: Status (Completed or Failed), Data (output), Failure.
	EventExecutionCompleted
	// EventExecutionTerminated ends an execution by request: Data (reason), Recursive.
	EventExecutionTerminated
	// EventExecutionSuspended holds further events until EventExecutionResumed. Reason, MessageID.
	EventExecutionSuspended
	// EventExecutionResumed releases the events held while suspended. Reason, MessageID.
	EventExecutionResumed
	// EventContinuedAsNew ends the execution; a new one starts with Data as input and Version.
	EventContinuedAsNew
	// EventActivityScheduled records an activity call: TaskID, Name, Version, Data (input).
	EventActivityScheduled
	// EventActivityCompleted: TaskID, Data (output).
	EventActivityCompleted
	// EventActivityFailed: TaskID, Failure.
	EventActivityFailed
	// EventTimerCreated: TaskID, FireAt.
	EventTimerCreated
	// EventTimerFired: TaskID, FireAt.
	EventTimerFired
	// EventSubOrchestrationScheduled: TaskID, Name, Version, InstanceID, ExecutionID, Data (input).
	EventSubOrchestrationScheduled
	// EventSubOrchestrationCompleted: TaskID, Data (output).
	EventSubOrchestrationCompleted
	// EventSubOrchestrationFailed: TaskID, Failure.
	EventSubOrchestrationFailed
	// EventEventRaised: an external event arrived. Name, Data, MessageID.
	EventEventRaised
	// EventEventSent: the orchestration raised an event on another instance. TaskID, InstanceID, Name, Data.
	EventEventSent
	// EventDetachedStarted: the orchestration started an independent instance. TaskID, InstanceID, Name, Version, Data.
	EventDetachedStarted
	// EventTaskCanceled: the orchestration cancelled the pending task TaskID.
	EventTaskCanceled
	// EventPatched: the code took the new branch of patch Name. TaskID.
	EventPatched
)

var eventKindNames = [...]string{
	EventEpisodeStarted:            "EpisodeStarted",
	EventExecutionStarted:          "ExecutionStarted",
	EventExecutionCompleted:        "ExecutionCompleted",
	EventExecutionTerminated:       "ExecutionTerminated",
	EventExecutionSuspended:        "ExecutionSuspended",
	EventExecutionResumed:          "ExecutionResumed",
	EventContinuedAsNew:            "ContinuedAsNew",
	EventActivityScheduled:         "ActivityScheduled",
	EventActivityCompleted:         "ActivityCompleted",
	EventActivityFailed:            "ActivityFailed",
	EventTimerCreated:              "TimerCreated",
	EventTimerFired:                "TimerFired",
	EventSubOrchestrationScheduled: "SubOrchestrationScheduled",
	EventSubOrchestrationCompleted: "SubOrchestrationCompleted",
	EventSubOrchestrationFailed:    "SubOrchestrationFailed",
	EventEventRaised:               "EventRaised",
	EventEventSent:                 "EventSent",
	EventDetachedStarted:           "DetachedStarted",
	EventTaskCanceled:              "TaskCanceled",
	EventPatched:                   "Patched",
}

var eventKindByName = func() map[string]EventKind {
	m := make(map[string]EventKind, len(eventKindNames))
	for k, n := range eventKindNames {
		if n != "" {
			m[n] = EventKind(k)
		}
	}
	return m
}()

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// MarshalText encodes the kind by name.
func (k EventKind) MarshalText() ([]byte, error) {
	if int(k) >= len(eventKindNames) || eventKindNames[k] == "" {
		return nil, fmt.Errorf("core: invalid event kind %d", uint8(k))
	}
	return []byte(eventKindNames[k]), nil
}

// UnmarshalText decodes a kind name.
func (k *EventKind) UnmarshalText(b []byte) error {
	v, ok := eventKindByName[string(b)]
	if !ok {
		return fmt.Errorf("unknown history event kind %q", b)
	}
	*k = v
	return nil
}

// isScheduling reports whether events of this kind record an action taken by
// orchestration code, matched against the code on replay.
func (k EventKind) isScheduling() bool {
	switch k {
	case EventActivityScheduled, EventTimerCreated, EventSubOrchestrationScheduled, EventEventSent,
		EventDetachedStarted, EventTaskCanceled, EventPatched:
		return true
	}
	return false
}

// ParentRef points from a sub-orchestration to the task in its parent.
type ParentRef struct {
	InstanceID  string `json:"inst"`
	ExecutionID string `json:"exec"`
	TaskID      int64  `json:"task"`
	Name        string `json:"name,omitempty"`
}

// Event is one entry of an execution's history, and the payload of every
// message between instances. Which fields are set depends on Kind (see the
// kind constants).
type Event struct {
	// Seq is the event's position in its execution's history, from 0, unique per execution.
	// Events inside messages have Seq -1 until they are appended.
	Seq  int64     `json:"seq"`
	Kind EventKind `json:"kind"`
	Time time.Time `json:"time"`
	// TaskID links scheduling events and their completions.
	TaskID         int64      `json:"task,omitempty"`
	Name           string     `json:"name,omitempty"`
	Version        string     `json:"ver,omitempty"`
	InstanceID     string     `json:"inst,omitempty"`
	ExecutionID    string     `json:"exec,omitempty"`
	Data           []byte     `json:"-"`
	Failure        *Failure   `json:"fail,omitempty"`
	FireAt         time.Time  `json:"fireAt,omitzero"`
	ScheduledStart time.Time  `json:"startAt,omitzero"`
	Parent         *ParentRef `json:"parent,omitempty"`
	MessageID      string     `json:"msg,omitempty"`
	Status         Status     `json:"status,omitempty"`
	Recursive      bool       `json:"recursive,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	// Seen, on the ExecutionStarted of a continue-as-new, lists the message
	// ids the previous execution consumed, so that one delivered again is
	// still dropped as a duplicate.
	Seen []string `json:"seen,omitempty"`
	// Trace, on ExecutionStarted, places the execution in a distributed
	// trace; nil when it was started without one.
	Trace *TraceContext `json:"trace,omitempty"`
}

// eventWire adds the payload in one of two forms: raw JSON under "d" when the
// payload comes back byte for byte that way (readable, no overhead), base64
// under "db" otherwise (any codec, any bytes).
type eventWire struct {
	*eventAlias
	D  json.RawMessage `json:"d,omitempty"`
	DB []byte          `json:"db,omitempty"`
}

type eventAlias Event

// MarshalJSON is the stable encoding of an event. The payload decodes to
// exactly the bytes it was encoded from.
func (e *Event) MarshalJSON() ([]byte, error) { return marshalJSON(e.wire()) }

func (e *Event) wire() eventWire {
	w := eventWire{eventAlias: (*eventAlias)(e)}
	if len(e.Data) > 0 {
		if rawJSONSafe(e.Data) {
			w.D = e.Data
		} else {
			w.DB = e.Data
		}
	}
	return w
}

// eventIn is what an event decodes into; the embedded struct is a value,
// so that a slice of them decodes in one pass.
type eventIn struct {
	eventAlias
	D  json.RawMessage `json:"d,omitempty"`
	DB []byte          `json:"db,omitempty"`
}

// event checks a decoded event and returns it with its payload.
func (w *eventIn) event() (*Event, error) {
	e := (*Event)(&w.eventAlias)
	if e.Kind == 0 {
		return nil, fmt.Errorf("history event without kind")
	}
	for f := e.Failure; f != nil; f = f.Cause {
		if f.Kind == 0 {
			// It would encode as a kind no decoder accepts.
			return nil, fmt.Errorf("history event %s: failure without kind", e.Kind)
		}
	}
	switch {
	case len(w.D) > 0:
		e.Data = []byte(w.D)
	case len(w.DB) > 0:
		e.Data = w.DB
	default:
		e.Data = nil
	}
	return e, nil
}

// rawJSONSafe reports whether b can be stored as raw JSON and read back
// unchanged, however the document that holds it is nested and re-encoded:
// every JSON encoder removes insignificant whitespace from embedded JSON, the
// standard one escapes <, >, &, U+2028 and U+2029 in it, and XML-based
// transports cannot carry U+FFFE and U+FFFF. Payloads from the default codec
// pass; the others are stored in base64.
func rawJSONSafe(b []byte) bool {
	if !json.Valid(b) {
		return false
	}
	inString, escaped := false, false
	for i := 0; i < len(b); {
		c := b[i]
		if c >= utf8.RuneSelf {
			// Valid JSON has non-ASCII bytes only inside strings.
			r, size := utf8.DecodeRune(b[i:])
			switch {
			case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029', r == '\uFFFE', r == '\uFFFF':
				return false
			}
			i += size
			continue
		}
		i++
		switch {
		case c == '<' || c == '>' || c == '&':
			return false
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

// marshalJSON encodes v without escaping <, > and & in strings, so that
// names, reasons and messages stay readable in stored histories.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes an event and checks that its kind is known.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w eventIn
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	ev, err := w.event()
	if err != nil {
		return err
	}
	*e = *ev
	return nil
}

// Size approximates the stored size of the event in bytes, for the history cap.
func (e *Event) Size() int {
	n := 48 + len(e.Name) + len(e.Version) + len(e.InstanceID) + len(e.ExecutionID) + len(e.Data) + len(e.MessageID) + len(e.Reason)
	for _, id := range e.Seen {
		n += len(id) + 3
	}
	n += e.Trace.size()
	for f := e.Failure; f != nil; f = f.Cause {
		n += len(f.Type) + len(f.Message) + len(f.Stack)
	}
	return n
}

// EventFormatVersion is the version of the history encoding written by EncodeEvents.
const EventFormatVersion = 1

// EncodeEvents encodes a run of history events in the stable, versioned format
// that providers store.
func EncodeEvents(events []*Event) ([]byte, error) {
	doc := struct {
		V      int         `json:"v"`
		Events []eventWire `json:"events"`
	}{V: EventFormatVersion, Events: make([]eventWire, len(events))}
	for i, e := range events {
		if e == nil {
			return nil, fmt.Errorf("%w: encode history: event %d is nil", ErrInvalidInput, i)
		}
		doc.Events[i] = e.wire()
	}
	return marshalJSON(doc)
}

// DecodeEvents decodes what EncodeEvents wrote. It rejects unknown format
// versions and events without a kind with an error, never a panic.
func DecodeEvents(b []byte) ([]*Event, error) {
	var doc struct {
		V      int        `json:"v"`
		Events []*eventIn `json:"events"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode history: %w", err)
	}
	if doc.V != EventFormatVersion {
		return nil, fmt.Errorf("decode history: unsupported format version %d (this build reads %d)", doc.V, EventFormatVersion)
	}
	events := make([]*Event, len(doc.Events))
	for i, w := range doc.Events {
		if w == nil {
			return nil, fmt.Errorf("decode history: event %d is null", i)
		}
		e, err := w.event()
		if err != nil {
			return nil, fmt.Errorf("decode history: event %d: %w", i, err)
		}
		events[i] = e
	}
	return events, nil
}
