package core

import (
	"errors"
	"fmt"
)

// Failure is the stored form of an error: what history, instance state and
// messages carry, so that an error keeps its kind, type and message across
// process boundaries.
type Failure struct {
	Kind         ErrorKind `json:"kind"`
	Type         string    `json:"type,omitempty"`
	Message      string    `json:"msg"`
	Stack        string    `json:"stack,omitempty"`
	NonRetriable bool      `json:"nonRetriable,omitempty"`
	Cause        *Failure  `json:"cause,omitempty"`
}

// Type names for the failures the engine itself produces.
const (
	FailureTypePanic           = "azdurable.Panic"
	FailureTypeNonDeterminism  = "azdurable.NonDeterminism"
	FailureTypeNotRegistered   = "azdurable.NotRegistered"
	FailureTypeHistoryTooLarge = "azdurable.HistoryTooLarge"
	FailureTypeCanceled        = "azdurable.Canceled"
	FailureTypeTimeout         = "azdurable.Timeout"
	FailureTypeTerminated      = "azdurable.Terminated"
	FailureTypePoison          = "azdurable.Poison"
	FailureTypeInvalidInput    = "azdurable.InvalidInput"
	FailureTypeInstanceExists  = "azdurable.InstanceExists"
)

var sentinelByType = map[string]error{
	FailureTypeNonDeterminism:  ErrNonDeterminism,
	FailureTypeNotRegistered:   ErrNotRegistered,
	FailureTypeHistoryTooLarge: ErrHistoryTooLarge,
	FailureTypeCanceled:        ErrCanceled,
	FailureTypeTimeout:         ErrTimeout,
	FailureTypeTerminated:      ErrTerminated,
	FailureTypePoison:          ErrPoison,
	FailureTypeInvalidInput:    ErrInvalidInput,
	FailureTypeInstanceExists:  ErrInstanceExists,
}

// typedError is implemented by user errors that name their own type for matching
// across the activity boundary.
type typedError interface{ ErrorType() string }

// userFailure is the failure of an error returned by user code (an activity
// or an orchestration): whatever went wrong inside it is the application's
// failure, unless the error says it is a configuration problem.
func userFailure(err error) *Failure {
	f := NewFailure(err)
	if f != nil && f.Kind == KindInfrastructure {
		c := *f
		c.Kind = KindApplication
		f = &c
	}
	return f
}

// NewFailure converts an error into its stored form.
func NewFailure(err error) *Failure {
	if err == nil {
		return nil
	}
	var fe *FailureError
	if errors.As(err, &fe) {
		return fe.Failure
	}
	f := &Failure{Kind: KindOf(err), Message: err.Error()}
	var (
		pe *PanicError
		ae *ApplicationError
		te typedError
		ac *ActivityError
		so *SubOrchestrationError
	)
	switch {
	case errors.As(err, &pe):
		f.Type, f.Message, f.Stack = FailureTypePanic, pe.Value, pe.Stack
	case errors.As(err, &ac):
		f.Type = "azdurable.ActivityFailed"
		f.Cause = NewFailure(ac.Err)
	case errors.As(err, &so):
		f.Type = "azdurable.SubOrchestrationFailed"
		f.Cause = NewFailure(so.Err)
	case errors.As(err, &ae):
		f.Type, f.Message, f.Stack, f.NonRetriable = ae.Type, ae.Message, ae.Stack, ae.NonRetriable
		if ae.Cause != nil {
			f.Cause = NewFailure(ae.Cause)
		}
	default:
		for typ, s := range sentinelByType {
			if errors.Is(err, s) {
				f.Type = typ
				break
			}
		}
		if f.Type == "" {
			if errors.As(err, &te) {
				f.Type = te.ErrorType()
			} else {
				f.Type = fmt.Sprintf("%T", err)
			}
		}
	}
	return f
}

func (f *Failure) Error() string {
	if f.Type != "" && f.Kind == KindApplication {
		return f.Type + ": " + f.Message
	}
	return f.Message
}

// AsError turns a stored failure back into an error that errors.Is and
// errors.As understand: a *PanicError, an error matching the engine's sentinel,
// or an *ApplicationError with the original type and message.
func (f *Failure) AsError() error {
	if f == nil {
		return nil
	}
	if f.Type == FailureTypePanic {
		return &PanicError{Value: f.Message, Stack: f.Stack}
	}
	if s, ok := sentinelByType[f.Type]; ok {
		return &sentinelFailure{f: f, sentinel: s}
	}
	ae := &ApplicationError{Type: f.Type, Message: f.Message, Stack: f.Stack, NonRetriable: f.NonRetriable}
	if f.Cause != nil {
		if c, ok := f.Cause.AsError().(*ApplicationError); ok {
			ae.Cause = c
		} else {
			ae.Cause = &ApplicationError{Type: f.Cause.Type, Message: f.Cause.Message, Stack: f.Cause.Stack}
		}
	}
	return ae
}

type sentinelFailure struct {
	f        *Failure
	sentinel error
}

func (e *sentinelFailure) Error() string        { return e.f.Message }
func (e *sentinelFailure) Is(target error) bool { return target == e.sentinel }

// MarshalText encodes the kind by name.
func (k ErrorKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a kind name.
func (k *ErrorKind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "application":
		*k = KindApplication
	case "configuration":
		*k = KindConfiguration
	case "infrastructure":
		*k = KindInfrastructure
	default:
		return fmt.Errorf("%w: unknown error kind %q", ErrInvalidInput, b)
	}
	return nil
}
