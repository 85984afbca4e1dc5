package tester

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
)

const (
	// pollInterval is the runtime's queue polling interval, in virtual time:
	// the smallest move of the clock lets every idle poller look at its queue.
	pollInterval = time.Nanosecond
	// sampleEvery and restLooks: the system is at rest when restLooks looks
	// in a row, sampleEvery apart in real time, find nothing in flight and
	// nothing started or ended in between.
	sampleEvery = 200 * time.Microsecond
	restLooks   = 3
	// readyLooks is how long, in looks, visible control messages may wait at
	// rest for a poller before the clock moves by pollInterval to wake them.
	// A poller that someone woke fetches them long before; the others (a
	// message sent through the provider with Options.NoInMemoryDelivery)
	// wait for time to move.
	readyLooks = 100
)

// drive waits until the instance has ended, moving virtual time whenever
// the system is at rest.
func (x *Tester) drive(ctx context.Context, id string) error {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	var r rest
	for {
		st, err := x.mem.GetInstance(ctx, id, false)
		switch {
		case err == nil && st.Status.IsTerminal():
			return nil
		case err != nil && !errors.Is(err, core.ErrInstanceNotFound) && ctx.Err() == nil:
			return fmt.Errorf("tester: read instance %q: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return x.timedOut(id)
		case <-tick.C:
		}
		if !r.observe(x.look()) {
			continue
		}
		moved, a, err := x.move(ctx, id, r)
		switch {
		case err != nil:
			return err
		case a != nil:
			x.runAction(ctx, a)
		}
		if moved {
			r = rest{}
		}
	}
}

// look is one sample of the work in flight.
type look struct {
	changes   uint64 // call and callback starts and ends, and moves, so far
	quiet     bool   // nothing in flight, and nothing started or ended during the look
	messages  int    // control-queue messages a fetch would hand out now
	workItems int    // work items a fetch would hand out now
}

func (x *Tester) look() look {
	before := x.changes()
	quiet := !x.track.busy() && x.clock.running.Load() == 0 && x.rt.Idle()
	messages, workItems := x.mem.Ready()
	return look{changes: before, quiet: quiet && x.changes() == before, messages: messages, workItems: workItems}
}

func (x *Tester) changes() uint64 {
	return x.track.changes.Load() + x.clock.changes.Load() + x.moves.Load()
}

// rest is a run of quiet looks that saw the same changes count: the system
// is at rest once it is restLooks long.
type rest struct {
	n int
	look
}

func (r *rest) observe(l look) bool {
	switch {
	case !l.quiet:
		r.n = 0
		return false
	case r.n == 0 || l.changes != r.changes:
		r.n, r.look = 1, l
	default:
		r.n++
	}
	return r.n >= restLooks
}

// move does the one thing that lets the system at rest go on: wake the
// pollers to fetch what is ready, hand back an action of the test that is
// due (the caller runs it once the lock is released), or advance the clock
// to the next thing due. With none left, the instance is blocked. When
// anything changed since the looks of r (another Run or Wait moved, or a
// call started), or visible messages may still be fetched by a poller that
// was woken, move does nothing and reports so.
func (x *Tester) move(ctx context.Context, id string, r rest) (moved bool, a *action, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.changes() != r.changes {
		return false, nil, nil
	}
	defer func() {
		if moved {
			x.moves.Add(1)
		}
	}()
	now := x.clock.Now()
	switch {
	case r.workItems > 0:
		// The runtime wakes no one for a work item: the activity poller
		// sleeps pollInterval and fetches without looking at the clock, so
		// running its wake-up early moves no time.
		if !x.clock.fireWithin(pollInterval) {
			x.clock.AdvanceTo(x.nextCallback(now))
		}
		return true, nil, nil
	case r.messages > 0:
		if r.n < readyLooks {
			return false, nil, nil
		}
		x.clock.AdvanceTo(x.nextCallback(now))
		return true, nil, nil
	case len(x.pending) > 0 && !x.pending[0].at.After(now):
		a := x.pending[0]
		x.pending = x.pending[1:]
		return true, a, nil
	}
	if err := x.unregistered(ctx, id); err != nil {
		return false, nil, err
	}
	if at, ok := x.nextDue(); ok {
		x.clock.AdvanceTo(at)
		return true, nil, nil
	}
	return false, nil, x.blocked(ctx, id)
}

// nextCallback is when the clock's next callback is due, which wakes a
// poller: at most pollInterval away unless the runtime options changed.
func (x *Tester) nextCallback(now time.Time) time.Time {
	if at, ok := x.clock.next(); ok {
		return at
	}
	return now.Add(pollInterval)
}

func (x *Tester) runAction(ctx context.Context, a *action) {
	err := a.f(ctx, x.client)
	switch {
	case err == nil:
	case errors.Is(err, core.ErrInstanceCompleted):
		x.t.Logf("tester: at virtual time %s: %v", a.at.Format(time.RFC3339Nano), err)
	default:
		x.t.Errorf("tester: at virtual time %s: %v", a.at.Format(time.RFC3339Nano), err)
	}
}

// nextDue is the earliest of: a durable timer, a message or work item
// becoming visible, an action of the test.
func (x *Tester) nextDue() (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time, ok bool) {
		if ok && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(x.mem.NextTimerAt())
	consider(x.mem.NextVisibleAt())
	if len(x.pending) > 0 {
		consider(x.pending[0].at, true)
	}
	return next, !next.IsZero()
}

// timedOut is the error of a Run or Wait that ran out of real time.
func (x *Tester) timedOut(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	what, err := x.diagnose(ctx, id)
	if err != nil {
		what = append(what, err.Error())
	}
	return fmt.Errorf("tester: instance %q did not end within %s of real time (virtual time %s): %w; %s",
		id, x.timeout, x.clock.Now().Format(time.RFC3339Nano), context.DeadlineExceeded, describe(what))
}

// blocked is the error of an instance that nothing can move on.
func (x *Tester) blocked(ctx context.Context, id string) error {
	what, err := x.diagnose(ctx, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("tester: %w: instance %q at virtual time %s: %s; no timer, delayed message or scheduled action is left to move it on",
		ErrBlocked, id, x.clock.Now().Format(time.RFC3339Nano), describe(what))
}

// unregistered returns an error when the instance, or a sub-orchestration
// below it, waits for an activity or orchestration that is registered nowhere.
func (x *Tester) unregistered(ctx context.Context, id string) error {
	_, err := x.diagnose(ctx, id)
	var nr *core.NotRegisteredError
	if errors.As(err, &nr) {
		return err
	}
	return nil
}

func describe(what []string) string {
	if len(what) == 0 {
		return "nothing is known to be pending"
	}
	s := what[0]
	for _, w := range what[1:] {
		s += "; " + w
	}
	return s
}
