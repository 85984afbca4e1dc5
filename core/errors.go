package core

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; every error the package returns
// wraps one of them or is one of the typed errors below.
var (
	// ErrInvalidInput: a caller passed a bad argument (id, name, payload, option).
	// Permanent; fix the call.
	ErrInvalidInput = errors.New("invalid input")
	// ErrInstanceNotFound: no instance has that id. Permanent.
	ErrInstanceNotFound = errors.New("instance not found")
	// ErrInstanceExists: an instance with that id already exists. Permanent.
	ErrInstanceExists = errors.New("instance already exists")
	// ErrConflict: a commit's token no longer matches the stored instance;
	// another writer moved the instance on. Retryable after reloading.
	ErrConflict = errors.New("commit conflict: instance changed since it was read")
	// ErrLockLost: a message or work item lock expired or was taken by someone else.
	// Retryable: the item will be delivered again.
	ErrLockLost = errors.New("lock lost")
	// ErrNotRegistered: no orchestration or activity is registered under the name
	// (and version). A configuration error.
	ErrNotRegistered = errors.New("not registered")
	// ErrNonDeterminism: orchestration code did not replay the actions recorded
	// in history. A configuration error: the code changed incompatibly.
	ErrNonDeterminism = errors.New("non-deterministic orchestration")
	// ErrHistoryTooLarge: an instance's history passed the configured cap.
	ErrHistoryTooLarge = errors.New("history too large")
	// ErrPayloadTooLarge: a payload passed the provider's or the runtime's limit.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrCanceled: the orchestration cancelled the task, or the runtime cancelled an activity.
	ErrCanceled = errors.New("canceled")
	// ErrTimeout: an activity attempt ran longer than its per-attempt timeout.
	ErrTimeout = errors.New("timed out")
	// ErrTerminated: the instance was terminated.
	ErrTerminated = errors.New("terminated")
	// ErrPoison: a message failed more often than the runtime allows and was dead-lettered.
	ErrPoison = errors.New("poison message")
	// ErrNotTerminal: the operation needs a finished instance (for example purge).
	ErrNotTerminal = errors.New("instance is not in a terminal state")
	// ErrStorage: a storage operation failed. Wrapped by providers; see IsRetryable.
	ErrStorage = errors.New("storage error")
	// ErrRuntimeStopped: the runtime is shutting down or was stopped.
	ErrRuntimeStopped = errors.New("runtime stopped")
)

// ErrorKind tells which party must act on an error.
type ErrorKind uint8

const (
	// KindApplication: user code failed (an activity or orchestration returned an error or panicked).
	KindApplication ErrorKind = iota + 1
	// KindConfiguration: the deployment is wrong (unregistered name, non-determinism, history cap, bad input).
	KindConfiguration
	// KindInfrastructure: storage or the runtime failed; such errors are retried.
	KindInfrastructure
)

func (k ErrorKind) String() string {
	switch k {
	case KindApplication:
		return "application"
	case KindConfiguration:
		return "configuration"
	case KindInfrastructure:
		return "infrastructure"
	}
	return "unknown"
}

// KindOf classifies err. Errors it does not know are infrastructure errors.
func KindOf(err error) ErrorKind {
	var fe *FailureError
	if errors.As(err, &fe) {
		return fe.Failure.Kind
	}
	var ae *ApplicationError
	var pe *PanicError
	switch {
	case errors.As(err, &ae), errors.As(err, &pe), errors.Is(err, ErrCanceled), errors.Is(err, ErrTimeout), errors.Is(err, ErrTerminated):
		return KindApplication
	case errors.Is(err, ErrNotRegistered), errors.Is(err, ErrNonDeterminism), errors.Is(err, ErrHistoryTooLarge),
		errors.Is(err, ErrInvalidInput), errors.Is(err, ErrPayloadTooLarge), errors.Is(err, ErrPoison):
		return KindConfiguration
	}
	return KindInfrastructure
}

// retryable is implemented by errors that know whether a retry can help.
type retryable interface{ Retryable() bool }

// IsRetryable reports whether repeating the failed operation may succeed.
// Conflicts, lost locks and transient storage errors are retryable; bad input,
// missing instances and configuration errors are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var r retryable
	if errors.As(err, &r) {
		return r.Retryable()
	}
	switch {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrLockLost):
		return true
	case errors.Is(err, ErrInvalidInput), errors.Is(err, ErrInstanceNotFound), errors.Is(err, ErrInstanceExists),
		errors.Is(err, ErrNotRegistered), errors.Is(err, ErrNonDeterminism), errors.Is(err, ErrPayloadTooLarge),
		errors.Is(err, ErrNotTerminal), errors.Is(err, ErrRuntimeStopped):
		return false
	}
	return false
}

// StorageError is a classified storage failure. Providers return it (wrapped) so
// that the runtime can tell a transient fault from a permanent one.
type StorageError struct {
	Op        string // what was attempted, e.g. "commit", "dequeue"
	Resource  string // the table/queue/blob or instance concerned
	Status    int    // HTTP status, when there was one
	Code      string // the store's error code
	Transient bool
	Err       error
}

func (e *StorageError) Error() string {
	s := fmt.Sprintf("storage %s %s failed", e.Op, e.Resource)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d %s)", e.Status, e.Code)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
func (e *StorageError) Unwrap() []error { return []error{ErrStorage, e.Err} }
func (e *StorageError) Retryable() bool { return e.Transient }

// ApplicationError is a failure raised by user code, carried across the
// activity and sub-orchestration boundary with its message and type intact.
type ApplicationError struct {
	// Type names the original error: its ErrorType() if it has one, else its Go type.
	Type    string
	Message string
	// Stack is set when the failure was a panic.
	Stack string
	// NonRetriable stops retry policies from retrying this failure.
	NonRetriable bool
	Cause        *ApplicationError
}

func (e *ApplicationError) Error() string {
	if e.Type != "" {
		return e.Type + ": " + e.Message
	}
	return e.Message
}

func (e *ApplicationError) Unwrap() error {
	if e.Cause == nil {
		return nil
	}
	return e.Cause
}

// NewApplicationError returns an application error of the given type, for
// user code that wants to control the type other code matches on.
func NewApplicationError(typ, message string, nonRetriable bool) *ApplicationError {
	return &ApplicationError{Type: typ, Message: message, NonRetriable: nonRetriable}
}

// ActivityError reports that an activity failed. errors.As reaches the
// ApplicationError (or PanicError) inside it.
type ActivityError struct {
	Name   string
	TaskID int64
	Err    error
}

func (e *ActivityError) Error() string {
	return fmt.Sprintf("activity %q (task %d) failed: %v", e.Name, e.TaskID, e.Err)
}
func (e *ActivityError) Unwrap() error { return e.Err }

// SubOrchestrationError reports that a sub-orchestration failed.
type SubOrchestrationError struct {
	Name       string
	InstanceID string
	TaskID     int64
	Err        error
}

func (e *SubOrchestrationError) Error() string {
	return fmt.Sprintf("sub-orchestration %q (instance %q, task %d) failed: %v", e.Name, e.InstanceID, e.TaskID, e.Err)
}
func (e *SubOrchestrationError) Unwrap() error { return e.Err }

// PanicError is a panic in user code, turned into a failure with its stack.
type PanicError struct {
	Value string
	Stack string
}

func (e *PanicError) Error() string { return "panic: " + e.Value }

// NonDeterminismError says where replay diverged from history.
type NonDeterminismError struct {
	InstanceID string
	// Seq is the history position of the recorded event (-1 when history has none).
	Seq int64
	// TaskID is the task sequence number of the action.
	TaskID int64
	// Recorded and Actual describe the action in history and the one the code took now.
	Recorded string
	Actual   string
}

func (e *NonDeterminismError) Error() string {
	return fmt.Sprintf("non-deterministic orchestration %q at history position %d (task %d): history has %s, code now does %s",
		e.InstanceID, e.Seq, e.TaskID, e.Recorded, e.Actual)
}
func (e *NonDeterminismError) Is(target error) bool { return target == ErrNonDeterminism }

// NotRegisteredError names what was not registered.
type NotRegisteredError struct {
	Kind    string // "orchestration" or "activity"
	Name    string
	Version string
}

func (e *NotRegisteredError) Error() string {
	if e.Version != "" {
		return fmt.Sprintf("%s %q version %q is not registered", e.Kind, e.Name, e.Version)
	}
	return fmt.Sprintf("%s %q is not registered", e.Kind, e.Name)
}
func (e *NotRegisteredError) Is(target error) bool { return target == ErrNotRegistered }

// FailureError is the error a client sees for a failed instance: the stored
// Failure, with its kind. errors.As reaches typed causes where they are known.
type FailureError struct {
	InstanceID string
	Failure    *Failure
}

func (e *FailureError) Error() string {
	return fmt.Sprintf("instance %q failed (%s error): %s", e.InstanceID, e.Failure.Kind, e.Failure.Error())
}
func (e *FailureError) Unwrap() error { return e.Failure.AsError() }
