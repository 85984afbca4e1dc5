package partition

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/leases"
)

// Options configure a Manager. The package documentation explains the
// defaults and how the timings relate.
type Options struct {
	// Store keeps the leases and host records; leases.NewBlobStore on Azure.
	// Required.
	Store leases.Store
	// HostID names this host in leases and host records. It must be unique
	// among the hosts that run at the same time. Required.
	HostID string
	// Partitions is the task hub's partition count, 1 to 4096. Required.
	Partitions int

	// LeaseDuration is how long a lease lives without renewal: after a
	// crash, the host's partitions move after at most LeaseDuration plus
	// AcquireInterval. Default 60s. BlobStore accepts whole seconds from 15s
	// to 60s.
	LeaseDuration time.Duration
	// RenewInterval is how often each lease is renewed and the host record
	// rewritten (the heartbeat). Default 40s. RenewInterval + DrainTimeout +
	// LeaseDuration/6 must be less than LeaseDuration, so that a failed
	// renewal is retried before the partition must be given up.
	RenewInterval time.Duration
	// AcquireInterval is how often the host reads every lease and host
	// record (one storage operation) to take free partitions, honour
	// hand-over requests and balance, while anything is in motion. It bounds
	// how long a partition stays free after its owner released it, once the
	// hosts have noticed. Default 1.5s.
	AcquireInterval time.Duration
	// SteadyScanInterval is how often the host scans instead while it is
	// steady: it is the only live host, holds every partition, and nobody
	// asks for one. It bounds how long a lone host takes to notice a host
	// that joins (and asks for partitions). With other live hosts a host
	// scans every AcquireInterval, so that partitions a stopping host
	// releases are taken at once. Default 10 AcquireIntervals (15s); it is
	// never shorter than AcquireInterval.
	SteadyScanInterval time.Duration
	// DrainTimeout bounds how long a partition that is handed over or given
	// up at shutdown may finish its in-flight episodes. Default 5s.
	DrainTimeout time.Duration

	// Logger receives the manager's events; nil means no logs.
	Logger *zerolog.Logger
}

// Defaults; the package documentation gives the reasons.
const (
	DefaultLeaseDuration   = 60 * time.Second
	DefaultRenewInterval   = 40 * time.Second
	DefaultAcquireInterval = 1500 * time.Millisecond
	DefaultDrainTimeout    = 5 * time.Second
	// DefaultSteadyScans: SteadyScanInterval defaults to this many
	// AcquireIntervals.
	DefaultSteadyScans = 10

	// MaxPartitions bounds Options.Partitions.
	MaxPartitions = 4096
)

// Derived timings, as multiples of the options.
const (
	// marginDivisor: the safety margin is LeaseDuration/marginDivisor.
	marginDivisor = 6
	// liveHeartbeats: a host is live while its heartbeat is younger than
	// this many RenewIntervals.
	liveHeartbeats = 3
	// freeScans: a partition seen free (and unclaimed) for this many
	// AcquireIntervals is taken by anyone, whatever the plan says.
	freeScans = 4
	// lateHeartbeatScans: a host whose heartbeat is older than RenewInterval
	// plus this many AcquireIntervals is late: its leases may be about to
	// expire, so the others scan every AcquireInterval.
	lateHeartbeatScans = 2
	// maxRenewRetry and maxOp cap the pause after a failed renewal and the
	// timeout of one store call, so that a long RenewInterval still leaves
	// several attempts before a partition must be given up.
	maxRenewRetry = 2 * time.Second
	maxOp         = 5 * time.Second
	// staleHostHeartbeats: host records older than this many live windows
	// are deleted.
	staleHostHeartbeats = 20
	// maxIntents bounds the partitions one host asks for at once.
	maxIntents = 64
)

func (o Options) withDefaults() (Options, error) {
	if o.Store == nil {
		return o, fmt.Errorf("%w: partition.Options.Store is nil", core.ErrInvalidInput)
	}
	if err := core.ValidateName("partition.Options.HostID", o.HostID); err != nil {
		return o, err
	}
	if o.Partitions < 1 || o.Partitions > MaxPartitions {
		return o, fmt.Errorf("%w: partition.Options.Partitions is %d; it must be from 1 to %d", core.ErrInvalidInput, o.Partitions, MaxPartitions)
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"LeaseDuration", &o.LeaseDuration, DefaultLeaseDuration},
		{"RenewInterval", &o.RenewInterval, DefaultRenewInterval},
		{"AcquireInterval", &o.AcquireInterval, DefaultAcquireInterval},
		{"DrainTimeout", &o.DrainTimeout, DefaultDrainTimeout},
	} {
		switch {
		case *f.v == 0:
			*f.v = f.def
		case *f.v < 0:
			return o, fmt.Errorf("%w: partition.Options.%s is %v; it must be positive (zero means the default %v)", core.ErrInvalidInput, f.name, *f.v, f.def)
		}
	}
	margin := o.LeaseDuration / marginDivisor
	if o.RenewInterval+o.DrainTimeout+margin >= o.LeaseDuration {
		return o, fmt.Errorf("%w: partition.Options: RenewInterval (%v) + DrainTimeout (%v) + a safety margin of LeaseDuration/%d (%v) must be less than LeaseDuration (%v): shorten the first two or lengthen the lease",
			core.ErrInvalidInput, o.RenewInterval, o.DrainTimeout, marginDivisor, margin, o.LeaseDuration)
	}
	switch {
	case o.SteadyScanInterval == 0:
		o.SteadyScanInterval = DefaultSteadyScans * o.AcquireInterval
	case o.SteadyScanInterval < 0:
		return o, fmt.Errorf("%w: partition.Options.SteadyScanInterval is %v; it must be positive (zero means %d AcquireIntervals)", core.ErrInvalidInput, o.SteadyScanInterval, DefaultSteadyScans)
	}
	o.SteadyScanInterval = max(o.SteadyScanInterval, o.AcquireInterval)
	if o.AcquireInterval > o.LeaseDuration {
		return o, fmt.Errorf("%w: partition.Options.AcquireInterval (%v) must not exceed LeaseDuration (%v)", core.ErrInvalidInput, o.AcquireInterval, o.LeaseDuration)
	}
	if c, ok := o.Store.(leases.DurationChecker); ok {
		if err := c.CheckDuration(o.LeaseDuration); err != nil {
			return o, fmt.Errorf("partition.Options.LeaseDuration: %w", err)
		}
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
	return o, nil
}

// timings are the derived durations a Manager uses.
type timings struct {
	lease, renew, acquire, drain time.Duration
	// steady is the scan interval while the host is steady.
	steady time.Duration
	// margin: processing stops this long before a lease can expire.
	margin time.Duration
	// op bounds one store call of the scan loop or of a renewal.
	op time.Duration
	// retry is the pause after a failed renewal.
	retry time.Duration
	// late: another host whose heartbeat is older is late.
	late time.Duration
	// live: hosts whose heartbeat is older are not live.
	live time.Duration
	// intentGrace: how long others leave a partition claimed by an intent
	// alone: long enough for the owner to notice, drain and release, and
	// for the thief to notice and acquire.
	intentGrace time.Duration
	// freeGrace: a partition free for this long is taken by anyone.
	freeGrace time.Duration
	// staleHost: host records older than this are deleted.
	staleHost time.Duration
}

func newTimings(o Options) timings {
	t := timings{lease: o.LeaseDuration, renew: o.RenewInterval, acquire: o.AcquireInterval, drain: o.DrainTimeout,
		steady: o.SteadyScanInterval}
	t.margin = o.LeaseDuration / marginDivisor
	t.op = min(o.RenewInterval/2, maxOp)
	t.retry = min(o.RenewInterval/5, maxRenewRetry)
	t.late = o.RenewInterval + lateHeartbeatScans*o.AcquireInterval
	// A steady host must notice a late host (one that may have died just
	// after its last renewal) before that host's leases can expire.
	t.steady = max(min(t.steady, o.LeaseDuration-t.late-o.AcquireInterval), o.AcquireInterval)
	t.live = liveHeartbeats * o.RenewInterval
	t.intentGrace = o.DrainTimeout + 4*o.AcquireInterval
	t.freeGrace = freeScans * o.AcquireInterval
	t.staleHost = staleHostHeartbeats * t.live
	return t
}
