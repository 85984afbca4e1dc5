// Package samples holds complete, runnable orchestrations that show the
// programming model at work, and a workload generator that runs a mix of them.
//
// Each file is one sample:
//
//   - hello.go: a sequence of activities (HelloSequence).
//   - fanout.go: fan-out/fan-in over N parallel activities (FanOutFanIn).
//   - approval.go: a human approval that races an external event against a
//     durable timer (Approval).
//   - saga.go: a trip booking that undoes what it booked when a step fails
//     (BookTrip).
//   - monitor.go: an eternal monitor that keeps its history short with
//     continue-as-new (Monitor).
//   - provisioning.go: an environment built from sub-orchestrations and
//     activities, compensated on failure (ProvisionEnvironment).
//   - chain.go: a long sequence of N activities, each feeding the next (Chain).
//   - events.go: an orchestration that collects N external events (CollectEvents).
//
// The activities do deterministic work (string and number transforms) so
// that every result can be checked; Options.Latency makes them take time, as
// real I/O would. Register adds every sample to a registry:
//
//	reg := core.NewRegistry()
//	if err := samples.Register(reg); err != nil { ... }
//
// The worker host (cmd/worker) registers them, so a task hub served by it
// runs them. Workload starts a seeded mix of instances through a client and
// checks each result; the demo, the benchmarks and the chaos tests use it.
package samples
