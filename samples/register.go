package samples

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Options tune the samples' activities.
type Options struct {
	// Latency is how long every activity takes before it does its work,
	// standing in for the I/O a real activity would do. It ends early when
	// the activity is cancelled. Default 0.
	Latency time.Duration
}

// Register adds every sample orchestration and activity to reg, with the
// default Options. It adds nothing when one of the names is taken.
func Register(reg *core.Registry) error { return RegisterWithOptions(reg, Options{}) }

// RegisterWithOptions adds every sample orchestration and activity to reg.
// It adds nothing when one of the names is taken.
func RegisterWithOptions(reg *core.Registry, o Options) error {
	if o.Latency < 0 {
		return fmt.Errorf("%w: samples: Latency is %s; it must not be negative", core.ErrInvalidInput, o.Latency)
	}
	// Build a registry of our own and merge it, so that a clash leaves reg untouched.
	own := core.NewRegistry()
	steps := []error{
		core.RegisterOrchestration(own, HelloSequence),
		core.RegisterOrchestration(own, FanOutFanIn),
		core.RegisterOrchestration(own, Approval),
		core.RegisterOrchestration(own, BookTrip),
		core.RegisterOrchestration(own, Monitor),
		core.RegisterOrchestration(own, ProvisionEnvironment),
		core.RegisterOrchestration(own, ProvisionResource),
		core.RegisterOrchestration(own, Chain),
		core.RegisterOrchestration(own, CollectEvents),

		registerActivity(own, o.Latency, SayHello),
		registerActivity(own, o.Latency, Square),
		registerActivity(own, o.Latency, RequestApproval),
		registerActivity(own, o.Latency, ProcessApproval),
		registerActivity(own, o.Latency, Escalate),
		registerActivity(own, o.Latency, Book),
		registerActivity(own, o.Latency, CancelBooking),
		registerActivity(own, o.Latency, CheckHealth),
		registerActivity(own, o.Latency, CreateResource),
		registerActivity(own, o.Latency, ResourceReady),
		registerActivity(own, o.Latency, DeleteResource),
		registerActivity(own, o.Latency, ConfigureDNS),
		registerActivity(own, o.Latency, Increment),
	}
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("samples: %w", err)
		}
	}
	return reg.Merge(own)
}

// registerActivity registers fn under its own name, preceded by the
// simulated latency.
func registerActivity[In, Out any](reg *core.Registry, latency time.Duration, fn func(core.ActivityContext, In) (Out, error)) error {
	if latency == 0 {
		return core.RegisterActivity(reg, fn)
	}
	return core.RegisterActivity(reg, func(ctx core.ActivityContext, in In) (Out, error) {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-ctx.Done():
			var zero Out
			return zero, ctx.Err()
		case <-t.C:
		}
		return fn(ctx, in)
	}, core.WithName(core.FuncName(fn)))
}

// code is a short deterministic code derived from parts, used for
// confirmation numbers and resource ids.
func code(parts ...string) string { return fmt.Sprintf("%08x", hashOf(parts...)) }

// hashOf is a deterministic number derived from parts.
func hashOf(parts ...string) uint32 {
	h := fnv.New32a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum32()
}
