package core

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits the core enforces on every provider; a provider may lower them (Limits).
const (
	// MaxInstanceIDLength is the longest instance id, in bytes.
	MaxInstanceIDLength = 256
	// MaxNameLength is the longest orchestration, activity or event name, in bytes.
	MaxNameLength = 256
)

// ValidateInstanceID checks an instance id: non-empty, valid UTF-8, no control
// characters, and at most max bytes (MaxInstanceIDLength when max is 0). Every
// other character is allowed; providers escape what their keys forbid.
func ValidateInstanceID(id string, max int) error {
	if max <= 0 || max > MaxInstanceIDLength {
		max = MaxInstanceIDLength
	}
	return validateText("instance id", id, max)
}

// ValidateName checks an orchestration, activity or event name with the same
// rules as instance ids and a limit of MaxNameLength bytes.
func ValidateName(what, name string) error {
	return validateText(what, name, MaxNameLength)
}

func validateText(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalidInput, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s is %d bytes long; the limit is %d", ErrInvalidInput, what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidInput, what, s)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q has a control character (U+%04X) at byte %d", ErrInvalidInput, what, s, r, i)
		}
	}
	return nil
}

func checkPayload(what string, b []byte, limit int) error {
	if limit > 0 && len(b) > limit {
		return fmt.Errorf("%w: %s is %d bytes; the limit is %d bytes", ErrPayloadTooLarge, what, len(b), limit)
	}
	return nil
}
