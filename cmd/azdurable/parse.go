package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azdurable/azdurable/core"
)

// parsePastTime reads a time flag: an RFC 3339 time, a date (UTC
// midnight), or a duration meaning that long before now.
func parsePastTime(flag, v string, now time.Time) (time.Time, error) {
	return parseTime(flag, v, now, -1, "a duration ago (24h)")
}

// parseFutureTime reads a time flag: an RFC 3339 time, a date, or a
// duration meaning that long after now.
func parseFutureTime(flag, v string, now time.Time) (time.Time, error) {
	return parseTime(flag, v, now, +1, "a duration from now (10m)")
}

func parseTime(flag, v string, now time.Time, sign time.Duration, durationHelp string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(sign * d).UTC(), nil
	}
	return time.Time{}, usagef("--%s %q is not a time: give an RFC 3339 time (2026-03-01T12:00:00Z), a date (2026-03-01) or %s", flag, v, durationHelp)
}

// parseStatuses reads --status values (repeated or comma-separated).
func parseStatuses(values []string) ([]core.Status, error) {
	var out []core.Status
	for _, v := range values {
		s, err := core.ParseStatus(strings.TrimSpace(v))
		if err != nil {
			return nil, &usageError{fmt.Errorf("--status: %w", err)}
		}
		out = append(out, s)
	}
	return out, nil
}

// parseJSONFlag reads a JSON payload flag and compacts it.
func parseJSONFlag(flag, v string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(v)); err != nil {
		var raw json.RawMessage
		detail := err.Error()
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			detail = err.Error()
			var se *json.SyntaxError
			if errors.As(err, &se) {
				detail = fmt.Sprintf("%s, after byte %d", se.Error(), se.Offset)
			}
		}
		return nil, usagef("--%s is not valid JSON (%s); a string needs quotes inside the shell's: --%s '\"text\"'", flag, detail, flag)
	}
	return buf.Bytes(), nil
}

// checkInstanceID validates an instance id argument before anything is sent.
func checkInstanceID(id string) error {
	if err := core.ValidateInstanceID(id, 0); err != nil {
		return &usageError{err}
	}
	return nil
}
