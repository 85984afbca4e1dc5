package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rs/zerolog"
)

// ActivityContext is what an activity sees: a context.Context that is
// cancelled when the orchestration cancels the activity or the host shuts
// down, plus the identity of the call.
type ActivityContext interface {
	context.Context
	InstanceID() string
	ExecutionID() string
	// TaskID identifies the call within the execution; it is the same when the
	// activity runs again after a crash, so it serves as an idempotency key
	// together with InstanceID and ExecutionID.
	TaskID() int64
	Name() string
	Codec() Codec
	Logger() *zerolog.Logger
}

type activityContext struct {
	context.Context
	task   *ActivityTask
	codec  Codec
	logger zerolog.Logger
}

func (c *activityContext) InstanceID() string  { return c.task.InstanceID }
func (c *activityContext) ExecutionID() string { return c.task.ExecutionID }
func (c *activityContext) TaskID() int64       { return c.task.TaskID }
func (c *activityContext) Name() string        { return c.task.Name }
func (c *activityContext) Codec() Codec        { return c.codec }
func (c *activityContext) Logger() *zerolog.Logger {
	l := c.logger.With().Str("instance", c.task.InstanceID).Str("activity", c.task.Name).Int64("task", c.task.TaskID).Logger()
	return &l
}

// CallOption configures an activity or sub-orchestration call.
type CallOption func(*callOptions)

type callOptions struct {
	version string
	retry   *RetryPolicy
	timeout time.Duration
	childID string
}

// WithCallVersion calls a specific version of the activity or orchestration.
func WithCallVersion(v string) CallOption { return func(o *callOptions) { o.version = v } }

// WithRetry retries a failed activity according to policy, waiting between
// attempts on durable timers.
func WithRetry(p RetryPolicy) CallOption { return func(o *callOptions) { o.retry = &p } }

// WithTimeout bounds each attempt of an activity: when an attempt runs longer
// the activity is cancelled and the attempt fails with ErrTimeout.
func WithTimeout(d time.Duration) CallOption { return func(o *callOptions) { o.timeout = d } }

// WithChildID gives a sub-orchestration or detached start an explicit
// instance id. Without it the id is derived from the parent's id and the task
// id ("parent:7"), the same on every replay.
func WithChildID(id string) CallOption { return func(o *callOptions) { o.childID = id } }

// RetryPolicy says when and how often a failed activity runs again.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included (at least 1).
	MaxAttempts int
	// FirstInterval is the wait before the second attempt (required when MaxAttempts > 1).
	FirstInterval time.Duration
	// BackoffCoefficient multiplies the wait after each attempt (default 2, at least 1).
	BackoffCoefficient float64
	// MaxInterval caps the wait (0: no cap).
	MaxInterval time.Duration
	// Handle decides whether a failure is retried. Nil retries every failure
	// except application errors marked NonRetriable and cancellations.
	Handle func(err error) bool
}

func (p *RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("%w: retry policy: MaxAttempts is %d; it must be at least 1", ErrInvalidInput, p.MaxAttempts)
	case p.MaxAttempts > 1 && p.FirstInterval <= 0:
		return fmt.Errorf("%w: retry policy: FirstInterval must be positive", ErrInvalidInput)
	case p.BackoffCoefficient != 0 && p.BackoffCoefficient < 1:
		return fmt.Errorf("%w: retry policy: BackoffCoefficient %v is below 1", ErrInvalidInput, p.BackoffCoefficient)
	}
	return nil
}

// delay is the wait after the given failed attempt (1-based).
func (p *RetryPolicy) delay(attempt int) time.Duration {
	c := p.BackoffCoefficient
	if c == 0 {
		c = 2
	}
	d := float64(p.FirstInterval) * math.Pow(c, float64(attempt-1))
	if p.MaxInterval > 0 && d > float64(p.MaxInterval) {
		return p.MaxInterval
	}
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

func (p *RetryPolicy) retries(err error) bool {
	if errors.Is(err, ErrCanceled) {
		return false
	}
	if p.Handle != nil {
		return p.Handle(err)
	}
	var ae *ApplicationError
	return !errors.As(err, &ae) || !ae.NonRetriable
}

// CallActivity schedules an activity and returns its future. activity is
// the registered name or the function itself; input is encoded with the
// codec (pass RawPayload to skip it). Activities run at least once: make
// them idempotent.
func CallActivity[R any](ctx *OrchestrationContext, activity any, input any, opts ...CallOption) *Future[R] {
	return &Future[R]{f: ctx.e.callActivity(activity, input, opts)}
}

func (e *executor) failedFuture(err error) *future {
	f := e.newFuture()
	f.resolve(nil, err)
	return f
}

func callName(kind string, target any) (string, error) {
	var name string
	switch t := target.(type) {
	case string:
		name = t
	default:
		name = FuncName(target)
		if name == "" {
			return "", fmt.Errorf("%w: %s must be a name or a function, not %T", ErrInvalidInput, kind, target)
		}
	}
	return name, ValidateName(kind+" name", name)
}

func (e *executor) callActivity(activity any, input any, opts []CallOption) *future {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	name, err := callName("activity", activity)
	if err != nil {
		return e.failedFuture(err)
	}
	in, err := e.cfg.codec.Marshal(input)
	if err != nil {
		return e.failedFuture(err)
	}
	if o.retry == nil && o.timeout <= 0 {
		return e.scheduleActivity(name, o.version, in)
	}
	policy := RetryPolicy{MaxAttempts: 1}
	if o.retry != nil {
		policy = *o.retry
		if err := policy.validate(); err != nil {
			return e.failedFuture(err)
		}
	}
	return e.retryingActivity(name, o.version, in, policy, o.timeout)
}

// retryingActivity runs attempts through engine callbacks, so that every
// attempt, timeout timer and backoff timer is an ordinary recorded task.
func (e *executor) retryingActivity(name, version string, input []byte, policy RetryPolicy, timeout time.Duration) *future {
	outer := e.newFuture()
	outer.task = &Event{Kind: EventActivityScheduled, Name: name}
	var (
		attempt   int
		current   *future
		cancelled bool
		start     func()
	)
	start = func() {
		attempt++
		act := e.scheduleActivity(name, version, input)
		current = act
		timedOut := false
		var timer *future
		if timeout > 0 {
			timer = e.scheduleTimer(e.newTaskID(), e.now.Add(timeout))
			timer.onDone(func() {
				if timer.err == nil && !act.done {
					timedOut = true
					act.cancel()
				}
			})
		}
		act.onDone(func() {
			if timer != nil && !timer.done {
				timer.cancel()
			}
			if cancelled {
				return
			}
			err := act.err
			if err == nil {
				outer.resolve(act.data, nil)
				return
			}
			if timedOut {
				err = &ActivityError{Name: name, TaskID: act.task.TaskID,
					Err: fmt.Errorf("attempt %d ran longer than %s: %w", attempt, timeout, ErrTimeout)}
			}
			if attempt >= policy.MaxAttempts || !policy.retries(err) {
				outer.resolve(nil, err)
				return
			}
			wait := e.scheduleTimer(e.newTaskID(), e.now.Add(policy.delay(attempt)))
			current = wait
			wait.onDone(func() {
				if wait.err == nil && !cancelled {
					start()
				}
			})
		})
	}
	outer.cancel = func() {
		cancelled = true
		if current != nil && !current.done {
			current.cancel()
		}
		outer.resolve(nil, fmt.Errorf("activity %q: %w", name, ErrCanceled))
	}
	start()
	return outer
}
