// Package ops is what operators use on a task hub, shared by the command-line
// tool (cmd/azdurable) and the dashboard: opening a hub without creating it,
// the state of its partitions and queues, and a history turned into a
// timeline of spans that people can read.
//
// Everything here reads storage through the provider and the lease store;
// nothing here runs orchestrations.
package ops
