package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Client starts and controls instances and reads their state. It needs only
// a provider: a client process does not have to run a runtime.
type Client struct {
	p     Provider
	codec Codec
	clock Clock
	hub   *completionHub // completions on this host, when the client comes from a runtime
	wake  func(partition int)
	// tracer, when set, gives each Start a span; without it, Start still
	// places the new execution under the caller's span, if ctx has one.
	tracer trace.TracerProvider
	// local reports whether this host runs the partition: the hub then hears
	// of every start and end of its instances, and polling is only a safety net.
	local func(partition int) bool
}

// ClientOption configures a client.
type ClientOption func(*Client)

// WithClientCodec sets the payload codec (default JSON); it must match the hosts'.
func WithClientCodec(c Codec) ClientOption { return func(cl *Client) { cl.codec = c } }

// WithClientTracerProvider makes Start emit a span ("create_orchestration
// <name>") under the caller's span, and start the execution under it. A
// client from Runtime.Client uses the runtime's tracer provider.
func WithClientTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(cl *Client) { cl.tracer = tp }
}

// NewClient returns a client of the provider's task hub.
func NewClient(p Provider, opts ...ClientOption) *Client {
	c := &Client{p: p, codec: JSONCodec{}, clock: realClock{}, wake: func(int) {}, local: func(int) bool { return false }}
	for _, o := range opts {
		o(c)
	}
	return c
}

// IfExists says what Start does when the instance id is taken.
type IfExists uint8

const (
	// FailIfExists fails with ErrInstanceExists (the default).
	FailIfExists IfExists = iota
	// ReplaceIfTerminal starts a new execution when the existing instance has
	// completed, failed or was terminated; it fails when it still runs.
	ReplaceIfTerminal
)

// StartOption configures Start.
type StartOption func(*startOptions)

type startOptions struct {
	id       string
	input    any
	version  string
	startAt  time.Time
	ifExists IfExists
}

// WithInstanceID sets the instance id (default: a random UUID).
func WithInstanceID(id string) StartOption { return func(o *startOptions) { o.id = id } }

// WithInput sets the input, encoded with the codec.
func WithInput(v any) StartOption { return func(o *startOptions) { o.input = v } }

// WithVersion starts an exact version (default: the latest the host has).
func WithVersion(v string) StartOption { return func(o *startOptions) { o.version = v } }

// WithStartAt delays the start until t. The instance exists, Pending, at once.
func WithStartAt(t time.Time) StartOption { return func(o *startOptions) { o.startAt = t } }

// WithIfExists sets the policy for an id that is already taken.
func WithIfExists(p IfExists) StartOption { return func(o *startOptions) { o.ifExists = p } }

// Start starts an instance of the orchestration (a name or the function) and
// returns its id. Nothing is written when the call fails.
func (c *Client) Start(ctx context.Context, orchestration any, opts ...StartOption) (string, error) {
	var o startOptions
	for _, opt := range opts {
		opt(&o)
	}
	name, err := callName("orchestration", orchestration)
	if err != nil {
		return "", err
	}
	generated := o.id == ""
	if generated {
		o.id = NewID()
	}
	if err := c.validateID(o.id); err != nil {
		return "", err
	}
	in, err := c.codec.Marshal(o.input)
	if err != nil {
		return "", err
	}
	if err := checkPayload(fmt.Sprintf("input of instance %q", o.id), in, c.p.Limits().MaxPayloadBytes); err != nil {
		return "", err
	}
	if !generated {
		st, err := c.p.GetInstance(ctx, o.id, false)
		switch {
		case errors.Is(err, ErrInstanceNotFound):
		case err != nil:
			return "", err
		case o.ifExists == ReplaceIfTerminal && st.Status.IsTerminal():
		default:
			return "", fmt.Errorf("%w: instance %q is %s", ErrInstanceExists, o.id, st.Status)
		}
	}
	ev := &Event{Seq: -1, Kind: EventExecutionStarted, Time: c.clock.Now(), Name: name, Version: o.version, Data: in,
		ExecutionID: NewID(), ScheduledStart: o.startAt.UTC()}
	if o.startAt.IsZero() {
		ev.ScheduledStart = time.Time{}
	}
	var span trace.Span
	if c.tracer != nil {
		ctx, span = c.tracer.Tracer(instrumentationLib).Start(ctx, "create_orchestration "+name,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(AttrInstanceID.String(o.id), AttrExecutionID.String(ev.ExecutionID), AttrName.String(name)))
	}
	if parent := trace.SpanContextFromContext(ctx); parent.IsValid() {
		ev.Trace = newTraceContext(parent, o.id, ev.ExecutionID)
	}
	err = c.send(ctx, o.id, ev)
	endSpan(span, err)
	if err != nil {
		return "", err
	}
	return o.id, nil
}

func (c *Client) validateID(id string) error {
	return ValidateInstanceID(id, c.p.Limits().MaxInstanceIDLength)
}

func (c *Client) send(ctx context.Context, id string, ev *Event) error {
	if err := c.p.SendMessages(ctx, []*Message{{ID: NewID(), InstanceID: id, Event: ev}}); err != nil {
		return fmt.Errorf("send %s to instance %q: %w", ev.Kind, id, err)
	}
	c.wake(c.p.PartitionOf(id))
	return nil
}

// ErrInstanceCompleted: the instance has ended and takes no more events or commands.
var ErrInstanceCompleted = errors.New("instance has completed")

// activeInstance reads the instance and fails unless it is still going.
func (c *Client) activeInstance(ctx context.Context, id string) (*InstanceState, error) {
	if err := c.validateID(id); err != nil {
		return nil, err
	}
	st, err := c.p.GetInstance(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if st.Status.IsTerminal() {
		return nil, fmt.Errorf("%w: instance %q is %s", ErrInstanceCompleted, id, st.Status)
	}
	return st, nil
}

// RaiseEvent sends an external event to a running instance.
func (c *Client) RaiseEvent(ctx context.Context, id, name string, data any) error {
	if err := ValidateName("event name", name); err != nil {
		return err
	}
	b, err := c.codec.Marshal(data)
	if err != nil {
		return err
	}
	if err := checkPayload(fmt.Sprintf("event %q for instance %q", name, id), b, c.p.Limits().MaxPayloadBytes); err != nil {
		return err
	}
	if _, err := c.activeInstance(ctx, id); err != nil {
		return err
	}
	msgID := NewID()
	return c.send(ctx, id, &Event{Seq: -1, Kind: EventEventRaised, Time: c.clock.Now(), Name: name, Data: b, MessageID: msgID})
}

// Terminate ends a running instance. With recursive, its running
// sub-orchestrations are terminated too.
func (c *Client) Terminate(ctx context.Context, id, reason string, recursive bool) error {
	if _, err := c.activeInstance(ctx, id); err != nil {
		return err
	}
	return c.send(ctx, id, &Event{Seq: -1, Kind: EventExecutionTerminated, Time: c.clock.Now(), Reason: reason, Recursive: recursive})
}

// Suspend holds a running instance: events it receives wait until Resume.
func (c *Client) Suspend(ctx context.Context, id, reason string) error {
	if _, err := c.activeInstance(ctx, id); err != nil {
		return err
	}
	return c.send(ctx, id, &Event{Seq: -1, Kind: EventExecutionSuspended, Time: c.clock.Now(), Reason: reason})
}

// Resume continues a suspended instance.
func (c *Client) Resume(ctx context.Context, id, reason string) error {
	if _, err := c.activeInstance(ctx, id); err != nil {
		return err
	}
	return c.send(ctx, id, &Event{Seq: -1, Kind: EventExecutionResumed, Time: c.clock.Now(), Reason: reason})
}

// Restart starts an ended instance again with its original name, version
// and input. With newID it starts a new instance and returns its id;
// otherwise it replaces the ended instance under the same id.
func (c *Client) Restart(ctx context.Context, id string, newID bool) (string, error) {
	if err := c.validateID(id); err != nil {
		return "", err
	}
	st, err := c.p.GetInstance(ctx, id, true)
	if err != nil {
		return "", err
	}
	opts := []StartOption{WithInput(RawPayload(st.Input)), WithVersion(st.Version)}
	if !newID {
		if !st.Status.IsTerminal() {
			return "", fmt.Errorf("%w: instance %q is %s; terminate it first or restart with a new id", ErrNotTerminal, id, st.Status)
		}
		opts = append(opts, WithInstanceID(id), WithIfExists(ReplaceIfTerminal))
	}
	return c.Start(ctx, st.Name, opts...)
}

// GetInstance reads an instance's state; with payloads, its input, output
// and custom status too.
func (c *Client) GetInstance(ctx context.Context, id string, withPayloads bool) (*InstanceState, error) {
	if err := c.validateID(id); err != nil {
		return nil, err
	}
	return c.p.GetInstance(ctx, id, withPayloads)
}

// WaitForCompletion waits until the instance has completed, failed or been
// terminated, or ctx is done, and returns its final state with payloads.
func (c *Client) WaitForCompletion(ctx context.Context, id string) (*InstanceState, error) {
	return c.waitFor(ctx, id, func(s Status) bool { return s.IsTerminal() })
}

// WaitForStart waits until the instance exists and has left Pending.
func (c *Client) WaitForStart(ctx context.Context, id string) (*InstanceState, error) {
	return c.waitFor(ctx, id, func(s Status) bool { return s != StatusPending })
}

func (c *Client) waitFor(ctx context.Context, id string, done func(Status) bool) (*InstanceState, error) {
	if err := c.validateID(id); err != nil {
		return nil, err
	}
	delay := 2 * time.Millisecond
	part := c.p.PartitionOf(id)
	var known *InstanceState // committed by this host, handed over by the hub
	for {
		changed, unsubscribe := c.subscribe(id)
		var st *InstanceState
		var err error
		if known != nil {
			st = known
		} else {
			st, err = c.p.GetInstance(ctx, id, true)
		}
		switch {
		case err == nil && done(st.Status):
			unsubscribe()
			return st, nil
		case err != nil && !errors.Is(err, ErrInstanceNotFound) && !IsRetryable(err):
			unsubscribe()
			return nil, err
		}
		wait := delay
		// After a storage error, retry soon rather than wait for a notice.
		if (err == nil || errors.Is(err, ErrInstanceNotFound)) && c.hub != nil && c.local(part) {
			// The hub wakes this waiter; the poll covers only a partition
			// that moves to another host meanwhile.
			wait = localPoll
		}
		t := time.NewTimer(wait)
		known = nil
		select {
		case <-ctx.Done():
		case <-changed.ch:
			// A state the hub hands over is the one just committed: it is
			// answered without a read when it is what the caller waits for.
			if n := changed.st; n != nil && done(n.Status) {
				known = copyCommitted(n)
			}
		case <-t.C:
			delay = min(delay*2, time.Second)
		}
		t.Stop()
		unsubscribe()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for instance %q: %w", id, ctx.Err())
		}
	}
}

// localPoll is how often a waiter reads an instance of a partition this host
// runs, in case no notice comes: thousands of waiters polling every second
// would cost more than the instances they wait for. The hub hears of every
// status change of the partition's instances, and of the partition's
// release (the waiters then poll as a client of another host does), so the
// poll is only a safety net.
const localPoll = 30 * time.Second

func (c *Client) subscribe(id string) (*notice, func()) {
	if c.hub == nil {
		return &notice{}, func() {}
	}
	return c.hub.subscribe(id)
}

// WaitForResult waits for the instance and decodes its output into R. A
// failed instance returns a *FailureError; a terminated one an error
// matching ErrTerminated.
func WaitForResult[R any](ctx context.Context, c *Client, id string) (R, error) {
	var v R
	st, err := c.WaitForCompletion(ctx, id)
	if err != nil {
		return v, err
	}
	switch st.Status {
	case StatusFailed:
		return v, &FailureError{InstanceID: id, Failure: st.Failure}
	case StatusTerminated:
		var reason string
		_ = c.codec.Unmarshal(st.Output, &reason)
		return v, fmt.Errorf("instance %q: %w: %s", id, ErrTerminated, reason)
	}
	if err := c.codec.Unmarshal(st.Output, &v); err != nil {
		return v, fmt.Errorf("instance %q: decode output: %w", id, err)
	}
	return v, nil
}

// CustomStatus decodes an instance's custom status into v.
func (c *Client) CustomStatus(ctx context.Context, id string, v any) error {
	st, err := c.GetInstance(ctx, id, true)
	if err != nil {
		return err
	}
	return c.codec.Unmarshal(st.CustomStatus, v)
}

// History reads the history of the instance's current execution.
func (c *Client) History(ctx context.Context, id string) ([]*Event, error) {
	if err := c.validateID(id); err != nil {
		return nil, err
	}
	return c.p.GetHistory(ctx, id)
}

// Query lists instances one page at a time.
func (c *Client) Query(ctx context.Context, q InstanceQuery) (*InstancePage, error) {
	if q.PageSize < 0 || q.PageSize > 1000 {
		return nil, fmt.Errorf("%w: page size %d is outside 1..1000", ErrInvalidInput, q.PageSize)
	}
	if !q.CreatedFrom.IsZero() && !q.CreatedTo.IsZero() && !q.CreatedFrom.Before(q.CreatedTo) {
		return nil, fmt.Errorf("%w: CreatedFrom must be before CreatedTo", ErrInvalidInput)
	}
	return c.p.QueryInstances(ctx, q)
}

// Purge deletes an ended instance and its history.
func (c *Client) Purge(ctx context.Context, id string) error {
	if err := c.validateID(id); err != nil {
		return err
	}
	return c.p.PurgeInstance(ctx, id)
}

// PurgeWhere deletes every ended instance matching the filter and returns how many.
func (c *Client) PurgeWhere(ctx context.Context, filter InstanceQuery) (int, error) {
	for _, s := range filter.Statuses {
		if !s.IsTerminal() {
			return 0, fmt.Errorf("%w: purge filter status %s is not terminal", ErrInvalidInput, s)
		}
	}
	return c.p.PurgeInstances(ctx, filter)
}

// Hosts lists the live hosts and what each has registered.
func (c *Client) Hosts(ctx context.Context) ([]HostInfo, error) {
	return c.p.ListHosts(ctx, time.Minute)
}

// completionHub wakes waiters in this process when an instance changes,
// and hands them the state that was committed.
type completionHub struct {
	mu      sync.Mutex
	waiters map[string]map[*notice]struct{}
}

// notice is one waiter's wake-up: ch is closed when the instance changed;
// st is then the state committed with the change (nil when the hub knows
// only that something changed, as at a partition's release).
type notice struct {
	ch chan struct{}
	st *InstanceState
}

func newCompletionHub() *completionHub {
	return &completionHub{waiters: map[string]map[*notice]struct{}{}}
}

func (h *completionHub) subscribe(id string) (*notice, func()) {
	n := &notice{ch: make(chan struct{})}
	h.mu.Lock()
	if h.waiters[id] == nil {
		h.waiters[id] = map[*notice]struct{}{}
	}
	h.waiters[id][n] = struct{}{}
	h.mu.Unlock()
	return n, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if ws := h.waiters[id]; ws != nil {
			if _, ok := ws[n]; ok {
				delete(ws, n)
				close(n.ch)
			}
			if len(ws) == 0 {
				delete(h.waiters, id)
			}
		}
	}
}

// publish wakes the instance's waiters with the state just committed.
func (h *completionHub) publish(id string, st *InstanceState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for n := range h.waiters[id] {
		n.st = st
		close(n.ch)
	}
	delete(h.waiters, id)
}

// publishWhere wakes the waiters of every instance that match selects.
func (h *completionHub) publishWhere(match func(id string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, ws := range h.waiters {
		if match(id) {
			for n := range ws {
				close(n.ch)
			}
			delete(h.waiters, id)
		}
	}
}

// copyCommitted copies a state the runtime committed, for a waiter: its
// payloads and failures are not shared, and its times are UTC, without a
// monotonic reading.
func copyCommitted(s *InstanceState) *InstanceState {
	c := *s
	c.CustomStatus = bytes.Clone(s.CustomStatus)
	c.Input = bytes.Clone(s.Input)
	c.Output = bytes.Clone(s.Output)
	for src, dst := s.Failure, &c.Failure; src != nil; src, dst = src.Cause, &(*dst).Cause {
		f := *src
		*dst = &f
	}
	if s.Parent != nil {
		p := *s.Parent
		c.Parent = &p
	}
	c.CreatedAt, c.UpdatedAt, c.CompletedAt = s.CreatedAt.Round(0).UTC(), s.UpdatedAt.Round(0).UTC(), s.CompletedAt.Round(0).UTC()
	return &c
}
