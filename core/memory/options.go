package memory

import (
	"fmt"
	"time"

	"github.com/azdurable/azdurable/core"
)

// Defaults of Options, in one place.
const (
	// DefaultPartitions is the partition count when Options.Partitions is 0.
	DefaultPartitions = 4
	// MaxPartitions is the largest partition count a task hub may have.
	MaxPartitions = 1024
	// DefaultMaxPayloadBytes bounds one payload when Options.MaxPayloadBytes is 0.
	// It is far above what the Azure provider stores inline, but low enough that a
	// runaway payload fails with core.ErrPayloadTooLarge instead of exhausting memory.
	DefaultMaxPayloadBytes = 50 << 20
)

// Options configure an in-memory provider. The zero value is valid.
type Options struct {
	// Partitions is the partition count P of the task hub, 1..MaxPartitions.
	// Default DefaultPartitions.
	Partitions int
	// Clock is the provider's source of time. Every time decision the provider
	// makes (lock expiry, message visibility, dead-letter and host timestamps)
	// uses it, so that a virtual clock controls all of them. Default: the
	// system clock, in UTC.
	Clock func() time.Time
	// MaxPayloadBytes bounds one payload (instance input, output and custom
	// status, event data, activity input); larger ones are rejected with
	// core.ErrPayloadTooLarge. 0 means DefaultMaxPayloadBytes; a negative value
	// means no limit.
	MaxPayloadBytes int
	// MaxInstanceIDLength bounds instance ids, in bytes, 1..core.MaxInstanceIDLength.
	// Default core.MaxInstanceIDLength.
	MaxInstanceIDLength int
}

// withDefaults validates the options and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.Partitions < 1 || o.Partitions > MaxPartitions {
		return o, fmt.Errorf("%w: memory provider: Partitions is %d; it must be between 1 and %d", core.ErrInvalidInput, o.Partitions, MaxPartitions)
	}
	if o.Clock == nil {
		o.Clock = func() time.Time { return time.Now().UTC() }
	}
	switch {
	case o.MaxPayloadBytes == 0:
		o.MaxPayloadBytes = DefaultMaxPayloadBytes
	case o.MaxPayloadBytes < 0:
		o.MaxPayloadBytes = 0 // core.Limits: zero means no limit
	}
	if o.MaxInstanceIDLength == 0 {
		o.MaxInstanceIDLength = core.MaxInstanceIDLength
	}
	if o.MaxInstanceIDLength < 1 || o.MaxInstanceIDLength > core.MaxInstanceIDLength {
		return o, fmt.Errorf("%w: memory provider: MaxInstanceIDLength is %d; it must be between 1 and %d",
			core.ErrInvalidInput, o.MaxInstanceIDLength, core.MaxInstanceIDLength)
	}
	return o, nil
}
