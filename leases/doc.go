// Package leases keeps partition leases and host records for the partition
// ownership manager (package partition).
//
// A Store holds one lease per partition: Acquire, Renew, Release and Change.
// Each lease records its owner's host id and an epoch that grows on every
// acquisition, so that two ownership terms of a partition never share an
// epoch. Beside the leases, a Store keeps one small record per host: its
// heartbeat and the partitions it asks their owners to hand over (intents).
// List returns all of it at once, which is what a manager reads on every
// scan and what operators' tools show.
//
// BlobStore keeps them in Azure Blob Storage (one blob per partition, one per
// host, in the task hub's lease container); MemoryStore keeps them in memory
// with the same behaviour, on an injectable clock, for tests. Each type's
// comment states what it guarantees.
//
// Leases are not fencing: a holder paused past its lease's expiry does not
// know it lost it until its next Renew. Correctness after a lost lease comes
// from the commit protocol's ETags; the partition manager only makes such
// overlaps rare by stopping work a safety margin before the lease can expire.
package leases
