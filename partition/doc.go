// Package partition shares a task hub's partitions among worker hosts. Its
// Manager implements core.Ownership with the leases of a leases.Store: one
// lease per partition, one record per host.
//
// # How hosts share partitions
//
// Every AcquireInterval (every SteadyScanInterval once it is steady, below)
// a manager reads every lease and host record with one List call and plans
// from that picture. Hosts whose record is younger than
// three RenewIntervals are live, except a host with an expired lease: it
// stopped renewing, so it is stuck or dead whatever its record says. The plan
// gives each live host ceil(P/H) or floor(P/H) partitions, the larger shares
// to the hosts that already have most, moving as few partitions as it can.
// All hosts read the same picture and apply the same rules, so their plans
// agree, and each carries out its own part:
//
//   - It acquires the free (released or expired) partitions the plan gives
//     it, opens them with PartitionAcquired, and renews each lease every
//     RenewInterval.
//   - It steals cooperatively. For a partition the plan moves to it from a
//     host above its share, it records an intent in its host record. The
//     owner sees the intent at its next scan, stops the partition with
//     PartitionReleased (drain bounded by DrainTimeout), and releases the
//     lease; the thief acquires it at its next scan. Meanwhile every other
//     host leaves a claimed partition alone, for DrainTimeout plus four
//     AcquireIntervals after it first saw the intent.
//   - A partition that stays free although the plan gives it to a host
//     (which may have read a slightly different picture, or failed to open
//     it) is taken at the next scan by a host below its share, and after
//     four AcquireIntervals by anyone.
//   - A stuck owner loses its partitions when their leases expire; the hosts
//     then see them expired and share them.
//
// # Safety
//
// Each lease's last confirmed renewal is the time its request was sent. If
// no renewal succeeds for LeaseDuration − LeaseDuration/6 − DrainTimeout,
// the manager calls PartitionReleased with a deadline a safety margin of
// LeaseDuration/6 before the lease could expire, so that the partition is no
// longer processed when another host can acquire it (as long as the clocks of
// the host and the store run at the same rate). A renewal that returns an
// error is never counted as a renewal; one that finds the lease taken
// (leases.ErrLeaseLost) stops the partition at once. Renewals go on while a
// partition drains. If PartitionAcquired fails, the lease is released and
// the partition is not acquired again by this host for a pause that doubles
// with each failure in a row (from one AcquireInterval up to LeaseDuration).
// When Run's context ends, the manager deletes its host record, then gives
// every partition up (PartitionReleased, then Release) so that the others
// take them over at their next scan rather than after the leases expire.
// Leases are not fencing: the commit protocol's ETags reject a paused host's
// late writes.
//
// # Steady scans
//
// A host that is the only live host, holds its share and runs all of it,
// while no host asks for a partition, is steady: it scans every
// SteadyScanInterval instead of every AcquireInterval. A host that joins
// asks for partitions in its host record, and the lone owner sees it at its
// next steady scan. With other live hosts nobody is steady: a host that
// shuts down releases its partitions, and the others take them within an
// AcquireInterval, as at any time. A crash needs no scan to be noticed in time: a host whose
// heartbeat is more than RenewInterval plus two AcquireIntervals old is
// late, and a steady host sees it at its next scan, which comes before that
// host's leases can expire (SteadyScanInterval is capped so that it does);
// from then on it scans every AcquireInterval.
//
// # Defaults and why
//
// The defaults keep an idle host with 16 partitions under 1,000 storage
// requests a minute while each control queue is still polled every second
// (960 of them); the leases get what is left.
//
//   - LeaseDuration 60s, the longest Azure allows: a killed host's
//     partitions resume elsewhere within LeaseDuration + AcquireInterval
//     (61.5s).
//   - RenewInterval 40s: the longest that leaves a failed renewal retried
//     (every 2s) for 5s before the partition must drain, a drain of
//     DrainTimeout, and the safety margin. It is also the heartbeat
//     interval; a host is live for 120s after its last heartbeat, late after
//     43s.
//   - AcquireInterval 1.5s: while partitions move, the hosts scan every
//     1.5s, so a hand-over takes about AcquireInterval + DrainTimeout +
//     AcquireInterval at worst. Scans are jittered between 90% and 100% of
//     the interval.
//   - SteadyScanInterval 15s (10 AcquireIntervals): a lone steady host
//     notices a joining host within 15s.
//   - DrainTimeout 5s: an episode commits in milliseconds to a few hundred
//     of them; 5s lets in-flight episodes finish.
//   - Derived: the safety margin is LeaseDuration/6 (10s), store calls time
//     out after RenewInterval/2 but at most 5s, host records idle for 20 live
//     windows (40 min) are deleted, and a host asks for at most 64
//     partitions at once.
//
// Storage cost of an idle, steady (lone) host owning n partitions, per
// minute: 1.5n renewals (one per lease per RenewInterval), 1.5 host record
// writes and 4 List calls (one per steady scan): 30 operations for n = 16, as
// TestIdleStorageOperations counts. With other live hosts, the scans cost
// 40 a minute instead of 4. Acquiring a partition costs 3
// operations on Azure (5 the first time, when its blob is created),
// releasing it one.
package partition
