package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/azdurable/azdurable/core"
)

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns; call flush when done.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = oneLine(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// oneLine keeps a cell on its line and its tab stops.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', '\t', '\v', '\f':
			return ' '
		}
		return r
	}, s)
}

// payload is a payload in JSON output: as JSON when it is JSON (the
// default codec), as text when it is text, else base64.
func payload(b []byte) any {
	switch {
	case len(b) == 0:
		return nil
	case json.Valid(b):
		return json.RawMessage(b)
	case utf8.Valid(b):
		return string(b)
	}
	return b
}

// payloadText is a payload for a table: compact JSON or text, cut to max
// characters (0: no limit).
func payloadText(b []byte, max int) string {
	if len(b) == 0 {
		return ""
	}
	var s string
	var buf bytes.Buffer
	switch {
	case json.Compact(&buf, b) == nil:
		s = buf.String()
	case utf8.Valid(b):
		s = string(b)
	default:
		s = fmt.Sprintf("(%d bytes of binary data)", len(b))
	}
	return cut(s, max)
}

// cut shortens s to max characters with an ellipsis (0: no limit).
func cut(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max-1]) + "…"
}

// timeText formats a time for tables, in UTC; "-" for none.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// durationText formats a duration for people.
func durationText(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return d.String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// failureText is a failure for a table: type and message, with its causes.
func failureText(f *core.Failure) string {
	var parts []string
	for ; f != nil; f = f.Cause {
		s := f.Message
		if f.Type != "" {
			s = f.Type + ": " + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ": caused by ")
}

// failureView is a failure in JSON output.
type failureView struct {
	Kind         string       `json:"kind"`
	Type         string       `json:"type,omitempty"`
	Message      string       `json:"message"`
	Stack        string       `json:"stack,omitempty"`
	NonRetriable bool         `json:"nonRetriable,omitempty"`
	Cause        *failureView `json:"cause,omitempty"`
}

func failureJSON(f *core.Failure) *failureView {
	if f == nil {
		return nil
	}
	return &failureView{Kind: f.Kind.String(), Type: f.Type, Message: f.Message, Stack: f.Stack,
		NonRetriable: f.NonRetriable, Cause: failureJSON(f.Cause)}
}
