package core

import "fmt"

// CallSubOrchestration starts a child orchestration and returns the future of
// its result. orchestration is the registered name or the function. The
// child's id is WithChildID's or derived from the parent's ("parent:7").
// When the child fails, the error is a *SubOrchestrationError.
func CallSubOrchestration[R any](ctx *OrchestrationContext, orchestration any, input any, opts ...CallOption) *Future[R] {
	e := ctx.e
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	name, err := callName("orchestration", orchestration)
	if err != nil {
		return &Future[R]{f: e.failedFuture(err)}
	}
	in, err := e.cfg.codec.Marshal(input)
	if err != nil {
		return &Future[R]{f: e.failedFuture(err)}
	}
	id := o.childID
	if id == "" {
		id = fmt.Sprintf("%s:%d", e.instanceID, e.nextTask)
	}
	if err := ValidateInstanceID(id, 0); err != nil {
		return &Future[R]{f: e.failedFuture(fmt.Errorf("sub-orchestration %q: %w", name, err))}
	}
	return &Future[R]{f: e.scheduleSubOrchestration(name, o.version, id, in)}
}

// StartOrchestration starts an independent (detached) instance and returns
// its id without waiting for it. The new instance has no parent: its result
// does not come back.
func (c *OrchestrationContext) StartOrchestration(orchestration any, input any, opts ...CallOption) (string, error) {
	e := c.e
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	name, err := callName("orchestration", orchestration)
	if err != nil {
		return "", err
	}
	in, err := e.cfg.codec.Marshal(input)
	if err != nil {
		return "", err
	}
	id := o.childID
	if id == "" {
		id = c.NewGUID()
	}
	if err := ValidateInstanceID(id, 0); err != nil {
		return "", err
	}
	task := e.newTaskID()
	exec := deterministicID(e.instanceID, e.executionID, "detached", fmt.Sprint(task))
	e.emit(&Event{Kind: EventDetachedStarted, TaskID: task, Name: name, Version: o.version, InstanceID: id, ExecutionID: exec, Data: in})
	return id, nil
}

// WaitForEvent returns the future of the next external event named name.
// Events are buffered first-in first-out per name, so an event raised before
// the wait is delivered too. Combine with a timer in WhenAny for a timeout.
func WaitForEvent[T any](ctx *OrchestrationContext, name string) *Future[T] {
	if err := ValidateName("event name", name); err != nil {
		return &Future[T]{f: ctx.e.failedFuture(err)}
	}
	return &Future[T]{f: ctx.e.waitForEvent(name)}
}
