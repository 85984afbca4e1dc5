package core

import "errors"

// future is the engine's side of a pending result: resolved once, in history
// order, with callbacks that run inside the engine (never on the user's
// coroutine), so that everything they do is deterministic.
type future struct {
	e         *executor
	done      bool
	data      []byte
	err       error
	order     int64 // resolution order within the execution; WhenAny picks the lowest
	callbacks []func()
	// cancel withdraws the pending work behind the future; nil when there is none.
	cancel func()
	// task describes the scheduled task behind the future, if any.
	task *Event
}

func (f *future) name() string {
	if f.task == nil {
		return ""
	}
	return f.task.Name
}

func (e *executor) newFuture() *future { return &future{e: e} }

func (f *future) resolve(data []byte, err error) {
	if f.done {
		return
	}
	f.done, f.data, f.err = true, data, err
	f.e.resolved++
	f.order = f.e.resolved
	cbs := f.callbacks
	f.callbacks = nil
	for _, cb := range cbs {
		cb()
	}
}

func (f *future) onDone(cb func()) {
	if f.done {
		cb()
		return
	}
	f.callbacks = append(f.callbacks, cb)
}

// Awaitable is anything WhenAll and WhenAny can wait on: every *Future.
type Awaitable interface {
	base() *future
}

// Future is the typed result of a durable operation: an activity, a timer, a
// sub-orchestration or an external event.
type Future[T any] struct{ f *future }

func (f *Future[T]) base() *future { return f.f }

// Await blocks the orchestration until the result is in history and returns it.
// Call it only from the orchestration's own goroutine.
func (f *Future[T]) Await(ctx *OrchestrationContext) (T, error) {
	var v T
	ctx.e.await(f.f)
	if f.f.err != nil {
		return v, f.f.err
	}
	if err := decodeResult(ctx.codec(), f.f.data, &v); err != nil {
		return v, err
	}
	return v, nil
}

// Done reports whether the result is available without waiting.
func (f *Future[T]) Done() bool { return f.f.done }

// Cancel withdraws the operation when it is still pending: a timer is
// removed, an activity's row is dropped and a locally running activity sees
// its context cancelled, a sub-orchestration is terminated, a wait for an
// event stops waiting. The future then fails with ErrCanceled. Cancelling a
// finished future does nothing. Cancel is recorded in history, so it must be
// called deterministically, like everything else in orchestration code.
func (f *Future[T]) Cancel() {
	if f.f.done || f.f.cancel == nil {
		return
	}
	f.f.cancel()
}

func decodeResult(c Codec, data []byte, v any) error {
	if err := c.Unmarshal(data, v); err != nil {
		return NewApplicationError(FailureTypeInvalidInput, "cannot decode result: "+err.Error(), true)
	}
	return nil
}

// WhenAll waits until every future is done and returns their errors joined,
// in argument order (nil when all succeeded).
func WhenAll(ctx *OrchestrationContext, fs ...Awaitable) error {
	for _, f := range fs {
		ctx.e.await(f.base())
	}
	var errs []error
	for _, f := range fs {
		if err := f.base().err; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WhenAny waits until at least one future is done and returns the one whose
// result came first in history: the choice is the same on every replay.
// Await the winner to get its value. Futures that lost keep running; Cancel
// them when they are no longer needed.
func WhenAny(ctx *OrchestrationContext, fs ...Awaitable) (Awaitable, error) {
	if len(fs) == 0 {
		return nil, ErrInvalidInput
	}
	any := ctx.e.newFuture()
	for _, f := range fs {
		f.base().onDone(func() { any.resolve(nil, nil) })
	}
	ctx.e.await(any)
	var winner Awaitable
	for _, f := range fs {
		b := f.base()
		if b.done && (winner == nil || b.order < winner.base().order) {
			winner = f
		}
	}
	return winner, nil
}
