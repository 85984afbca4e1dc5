package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
)

// unit is one instance a workload starts, with what it must return.
type unit struct {
	orchestration string
	input         any
	want          any
	// events are raised on the instance, as samples.CollectEvent, once it
	// has started.
	events []int64
}

// workload plans the units of one run from its size.
type workload struct {
	name  string
	about string
	// plan returns the units for size n, drawn from rnd.
	plan func(n int, o planOptions, rnd *rand.Rand) ([]unit, error)
	// many is true when the size counts instances (throughput over many
	// orchestrations), false when it sizes one orchestration.
	many bool
}

// planOptions are the workload knobs that are not the size.
type planOptions struct {
	Timer   time.Duration // wait of each timer (timers)
	Payload int           // bytes of each name (payload)
	// InProcess allows orchestrations that only the bench registers.
	InProcess bool
}

// wideFanOut is FanOutFanIn without its cap of samples.MaxFanOut, for the
// in-memory fan-out of 10,000. Worker processes do not register it.
const wideFanOut = "WideFanOut"

func registerBenchOnly(reg *core.Registry) error {
	return core.RegisterOrchestration(reg, samples.SquareSum, core.WithName(wideFanOut))
}

var cityPool = []string{"Oslo", "Lima", "Kyoto", "Accra", "Quito", "Perth", "Riga", "Dakar", "Tokyo", "Cairo"}

func greetings(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = samples.Greeting(n)
	}
	return out
}

var workloads = []*workload{
	{name: "hello", many: true, about: "n instances of HelloSequence, 5 activities each",
		plan: func(n int, _ planOptions, rnd *rand.Rand) ([]unit, error) {
			us := make([]unit, n)
			for i := range us {
				names := make([]string, 5)
				for j := range names {
					names[j] = cityPool[rnd.IntN(len(cityPool))]
				}
				us[i] = unit{orchestration: "HelloSequence", input: names, want: greetings(names)}
			}
			return us, nil
		}},
	{name: "fanout", about: "one orchestration fanning out to n parallel activities",
		plan: func(n int, o planOptions, _ *rand.Rand) ([]unit, error) {
			name := "FanOutFanIn"
			if n > samples.MaxFanOut {
				if !o.InProcess {
					return nil, fmt.Errorf("fan-out of %d: worker hosts run FanOutFanIn, which takes at most %d; use -hosts 0", n, samples.MaxFanOut)
				}
				name = wideFanOut
			}
			return []unit{{orchestration: name, input: n, want: samples.SumOfSquares(n)}}, nil
		}},
	{name: "chain", about: "one orchestration calling n activities one after another",
		plan: func(n int, _ planOptions, _ *rand.Rand) ([]unit, error) {
			return []unit{{orchestration: "Chain", input: n, want: int64(n)}}, nil
		}},
	{name: "events", about: "n external events raised on one instance",
		plan: func(n int, _ planOptions, rnd *rand.Rand) ([]unit, error) {
			u := unit{orchestration: "CollectEvents", input: n}
			var sum int64
			for range n {
				v := int64(rnd.IntN(1000))
				u.events = append(u.events, v)
				sum += v
			}
			u.want = sum
			return []unit{u}, nil
		}},
	{name: "timers", many: true, about: "n instances each waiting on a durable timer (an approval that times out)",
		plan: func(n int, o planOptions, rnd *rand.Rand) ([]unit, error) {
			us := make([]unit, n)
			for i := range us {
				req := samples.ApprovalRequest{ID: fmt.Sprintf("req-%d", i), Requester: fmt.Sprintf("team-%d", rnd.IntN(9)),
					Amount: int64(100 + rnd.IntN(9900)), Timeout: o.Timer}
				us[i] = unit{orchestration: "Approval", input: req, want: samples.ExpectedApproval(req, nil)}
			}
			return us, nil
		}},
	{name: "payload", many: true, about: "n instances of HelloSequence over 5 names of -payload bytes each",
		plan: func(n int, o planOptions, rnd *rand.Rand) ([]unit, error) {
			us := make([]unit, n)
			for i := range us {
				names := make([]string, 5)
				for j := range names {
					names[j] = randomText(rnd, o.Payload)
				}
				us[i] = unit{orchestration: "HelloSequence", input: names, want: greetings(names)}
			}
			return us, nil
		}},
}

// randomText is n letters drawn from rnd: text that does not compress to nothing.
func randomText(rnd *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(byte('a' + rnd.IntN(26)))
	}
	return b.String()
}

func findWorkload(name string) (*workload, error) {
	i := slices.IndexFunc(workloads, func(w *workload) bool { return w.name == name })
	if i < 0 {
		names := make([]string, len(workloads))
		for j, w := range workloads {
			names[j] = w.name
		}
		return nil, fmt.Errorf("unknown workload %q: choose from %s, or idle", name, strings.Join(names, ", "))
	}
	return workloads[i], nil
}
