// Package chaos holds the chaos test of DESIGN §7: three worker hosts
// (cmd/worker, real processes) run a mixed sample workload on Azurite, each
// through its own fault proxy (test/azurite.FaultProxy) that fails more than
// 5% of its storage requests, while the test kills hosts with kill -9 and
// restarts them every few seconds, cuts one host off from storage past its
// lease, restarts Azurite once and injects poison messages. It passes when
// every instance ends with the expected output, every history validates, no
// message is left in any queue and the only dead letters are the poison
// messages.
//
//	go test ./test/chaos                     # short: about two minutes
//	go test ./test/chaos -chaos.long -timeout 30m
//	AZDURABLE_CHAOS_LONG=1 go test ./test/chaos -timeout 30m
//
// -chaos.seed (or AZDURABLE_CHAOS_SEED) changes the schedule and the fault
// draws. docs/reliability.md describes the fault model and the figures.
package chaos
