// Package badinput holds the bad-input and storage-error tests of issue 8,
// against real Azurite: every entry point of the client API and of the
// worker's configuration is fed empty, oversized, unicode, control-character
// and key-forbidden values, payloads around the queue, property and payload
// limits, unknown names, duplicate starts and events to unknown or completed
// instances. Each refusal must match its documented sentinel, name the
// offending value and write nothing; each legal value must work end to end.
// Through the fault proxy of test/azurite, a transient storage fault must be
// retried a bounded number of times and a permanent one must surface at once,
// naming the operation and never quoting a secret.
//
//	go test ./test/badinput
//
// docs/reliability.md lists what is covered.
package badinput
