package samples

import (
	"strconv"
	"time"

	"github.com/azdurable/azdurable/core"
)

// DefaultMonitorInterval is the wait between checks when MonitorState does not say.
const DefaultMonitorInterval = time.Minute

// MonitorState is the input of Monitor, and the state it carries from one
// execution to the next.
type MonitorState struct {
	Target string `json:"target"`
	// Interval is the wait between checks (default DefaultMonitorInterval).
	Interval time.Duration `json:"interval,omitempty"`
	// MaxChecks ends the monitor after that many checks; 0 runs it forever.
	MaxChecks int `json:"maxChecks,omitempty"`
	// Checks and Unhealthy count the checks done so far and those that failed.
	Checks    int `json:"checks"`
	Unhealthy int `json:"unhealthy"`
}

// MonitorReport is what Monitor returns once MaxChecks checks are done.
type MonitorReport struct {
	Target    string `json:"target"`
	Checks    int    `json:"checks"`
	Unhealthy int    `json:"unhealthy"`
}

// HealthProbe is the input of CheckHealth.
type HealthProbe struct {
	Target string `json:"target"`
	Check  int    `json:"check"`
}

// Monitor checks a target's health, sleeps, and starts over as a new
// execution with ContinueAsNew. Each execution's history holds one check, so
// the monitor can run forever without its history growing. Its custom status
// is the state so far.
func Monitor(ctx *core.OrchestrationContext, s MonitorState) (MonitorReport, error) {
	healthy, err := core.CallActivity[bool](ctx, CheckHealth, HealthProbe{Target: s.Target, Check: s.Checks}).Await(ctx)
	if err != nil {
		return MonitorReport{}, err
	}
	s.Checks++
	if !healthy {
		s.Unhealthy++
		ctx.Logger().Info().Str("target", s.Target).Int("check", s.Checks).Msg("target unhealthy")
	}
	if err := ctx.SetCustomStatus(s); err != nil {
		return MonitorReport{}, err
	}
	if s.MaxChecks > 0 && s.Checks >= s.MaxChecks {
		return MonitorReport{Target: s.Target, Checks: s.Checks, Unhealthy: s.Unhealthy}, nil
	}
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultMonitorInterval
	}
	if err := ctx.Sleep(interval); err != nil {
		return MonitorReport{}, err
	}
	// The returned report is ignored: the instance goes on with the new state.
	return MonitorReport{}, ctx.ContinueAsNew(s)
}

// CheckHealth probes the target. This sample's targets are unhealthy on
// every check whose number Healthy says so.
func CheckHealth(_ core.ActivityContext, p HealthProbe) (bool, error) {
	return Healthy(p.Target, p.Check), nil
}

// Healthy is what CheckHealth reports for the check-th check (from 0) of
// target: unhealthy on about one check in five.
func Healthy(target string, check int) bool {
	return hashOf("health", target, strconv.Itoa(check))%5 != 0
}

// ExpectedMonitorReport is what Monitor returns for s. A monitor without
// MaxChecks runs forever and returns nothing: false.
func ExpectedMonitorReport(s MonitorState) (MonitorReport, bool) {
	if s.MaxChecks <= 0 {
		return MonitorReport{}, false
	}
	r := MonitorReport{Target: s.Target, Checks: s.Checks, Unhealthy: s.Unhealthy}
	for {
		if !Healthy(s.Target, r.Checks) {
			r.Unhealthy++
		}
		r.Checks++
		if r.Checks >= s.MaxChecks {
			return r, true
		}
	}
}
