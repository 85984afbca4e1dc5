package core

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// OrchestrationContext is what orchestration code sees of its execution. Code
// must be deterministic: it must take the same actions in the same order on
// every replay. Use the context's Now, NewGUID and Logger instead of
// time.Now, random ids and plain logging; do I/O only in activities; start
// no goroutines; do not range over maps to decide what to schedule.
type OrchestrationContext struct{ e *executor }

func (c *OrchestrationContext) codec() Codec { return c.e.cfg.codec }

// InstanceID is the instance's id.
func (c *OrchestrationContext) InstanceID() string { return c.e.instanceID }

// ExecutionID identifies the current execution; continue-as-new starts a new one.
func (c *OrchestrationContext) ExecutionID() string { return c.e.executionID }

// Name is the orchestration's registered name.
func (c *OrchestrationContext) Name() string { return c.e.name }

// Version is the orchestration version this instance runs: the one it started
// with, or the one continue-as-new moved it to.
func (c *OrchestrationContext) Version() string { return c.e.version }

// Parent is the parent's reference for a sub-orchestration, nil otherwise.
func (c *OrchestrationContext) Parent() *ParentRef { return c.e.parent }

// Now is the deterministic current time: the time the current episode started.
func (c *OrchestrationContext) Now() time.Time { return c.e.now }

// IsReplaying reports whether the code is re-running recorded history.
func (c *OrchestrationContext) IsReplaying() bool { return c.e.replaying }

// NewGUID returns a UUID that is the same on every replay.
func (c *OrchestrationContext) NewGUID() string {
	c.e.guids++
	return deterministicID(c.e.instanceID, c.e.executionID, "guid", fmt.Sprint(c.e.guids))
}

// Logger returns a logger with the instance's fields that writes nothing
// while the code replays, so that each line is logged once.
func (c *OrchestrationContext) Logger() *zerolog.Logger {
	if c.e.replaying {
		l := zerolog.Nop()
		return &l
	}
	l := c.e.cfg.logger.With().Str("instance", c.e.instanceID).Str("execution", c.e.executionID).
		Str("orchestration", c.e.name).Logger()
	return &l
}

// SetCustomStatus publishes a value with the instance's status (encoded with
// the codec), visible to clients after the episode commits.
func (c *OrchestrationContext) SetCustomStatus(v any) error {
	b, err := c.codec().Marshal(v)
	if err != nil {
		return err
	}
	c.e.customStatus = b
	return nil
}

// IsPatched lets new code branch safely while old histories replay. It returns
// true, and records so, when the execution reaches this point for the first
// time under code that has the patch; it returns false when replaying history
// recorded before the patch existed, so that old instances keep their old path.
// Once every old instance has finished, remove the check and the old branch.
func (c *OrchestrationContext) IsPatched(name string) bool { return c.e.isPatched(name) }

// CreateTimer returns a durable timer that fires after d. Timers of any
// length work; they survive restarts and fail-overs.
func (c *OrchestrationContext) CreateTimer(d time.Duration) *Future[Void] {
	return c.CreateTimerAt(c.e.now.Add(d))
}

// CreateTimerAt returns a durable timer that fires at t.
func (c *OrchestrationContext) CreateTimerAt(t time.Time) *Future[Void] {
	return &Future[Void]{f: c.e.scheduleTimer(c.e.newTaskID(), t.UTC())}
}

// Sleep waits for d, durably.
func (c *OrchestrationContext) Sleep(d time.Duration) error {
	_, err := c.CreateTimer(d).Await(c)
	return err
}

// RaiseEvent sends an external event to another instance, without waiting.
func (c *OrchestrationContext) RaiseEvent(instanceID, name string, data any) error {
	if err := ValidateInstanceID(instanceID, 0); err != nil {
		return err
	}
	if err := ValidateName("event name", name); err != nil {
		return err
	}
	b, err := c.codec().Marshal(data)
	if err != nil {
		return err
	}
	c.e.emit(&Event{Kind: EventEventSent, TaskID: c.e.newTaskID(), InstanceID: instanceID, Name: name, Data: b})
	return nil
}

// ContinueAsNew ends this execution once the orchestration function returns
// and starts a new one of the same instance with input and a fresh history.
// Events that arrived and were not yet received carry over. Pass
// WithContinueVersion to move the instance to another version.
func (c *OrchestrationContext) ContinueAsNew(input any, opts ...ContinueAsNewOption) error {
	b, err := c.codec().Marshal(input)
	if err != nil {
		return err
	}
	can := &continueAsNew{input: b}
	for _, o := range opts {
		o(can)
	}
	c.e.can = can
	return nil
}

// ContinueAsNewOption configures ContinueAsNew.
type ContinueAsNewOption func(*continueAsNew)

// WithContinueVersion makes the new execution run version v.
func WithContinueVersion(v string) ContinueAsNewOption {
	return func(c *continueAsNew) { c.version = v }
}
