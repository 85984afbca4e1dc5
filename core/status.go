package core

import (
	"fmt"
	"strings"
)

// Status is the runtime status of an orchestration instance.
type Status uint8

// The statuses an instance can be in. Completed, Failed, Terminated and
// ContinuedAsNew end an execution; the others do not.
const (
	StatusPending Status = iota + 1
	StatusRunning
	StatusSuspended
	StatusCompleted
	StatusFailed
	StatusTerminated
	StatusContinuedAsNew
)

var statusNames = [...]string{
	StatusPending:        "Pending",
	StatusRunning:        "Running",
	StatusSuspended:      "Suspended",
	StatusCompleted:      "Completed",
	StatusFailed:         "Failed",
	StatusTerminated:     "Terminated",
	StatusContinuedAsNew: "ContinuedAsNew",
}

// AllStatuses lists every status, in declaration order.
var AllStatuses = []Status{StatusPending, StatusRunning, StatusSuspended, StatusCompleted, StatusFailed, StatusTerminated, StatusContinuedAsNew}

func (s Status) String() string {
	if int(s) < len(statusNames) && statusNames[s] != "" {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// IsTerminal reports whether the status ends the instance: no further work runs for it.
func (s Status) IsTerminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusTerminated
}

// ParseStatus parses a status name, case-insensitively.
func ParseStatus(name string) (Status, error) {
	for _, s := range AllStatuses {
		if strings.EqualFold(s.String(), name) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown status %q (want one of Pending, Running, Suspended, Completed, Failed, Terminated, ContinuedAsNew)", ErrInvalidInput, name)
}

// MarshalText encodes the status by name, so that stored and JSON forms are stable.
func (s Status) MarshalText() ([]byte, error) {
	if int(s) >= len(statusNames) || statusNames[s] == "" {
		return nil, fmt.Errorf("core: invalid status %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a status name.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
