package azprovider

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/azdurable/azdurable/core"
)

// Row keys. Every row of a partition lives in one RowKey range, named by its
// first letter and the separator '|':
//
//	I|<inst>                          instance row (its ETag is the commit token)
//	H|<inst>|<exec>|<seq:10 digits>   history chunk starting at seq
//	X|<status>|<created>|<inst>       index entry for queries by status and time
//	T|<inst>                          the instance's pending timers, packed
//	A|<inst>                          the instance's dispatched activities, packed
//	O|<inst>|<unit>                   one outbox unit
//
// Instance ids, execution ids and other free text are escaped with escapeKey.

const (
	keySep = "|"

	// maxKeyChars is the longest key Azure accepts, in UTF-16 code units.
	maxKeyChars = 512
	// seqDigits is the width of history sequence numbers in H| keys.
	seqDigits = 10

	// timeKeyLayout formats times in keys: fixed width, so that keys sort by time,
	// at the 100 ns resolution Azure Tables stores.
	timeKeyLayout = "20060102T150405.0000000Z"
)

// Key escaping. Table keys may not contain / \ # ? or control characters, the
// SDK mishandles ' in batch URLs, % is fragile in URLs, and | separates key
// parts. Each such character is replaced by ONE look-alike character, so an
// escaped id is never longer (in UTF-16 code units) than the id is in UTF-8
// bytes: a 256-byte id of slashes still fits a 512-character key with its
// execution id and sequence number, which `~XX` hex escapes would not.
//
//	/ → ／ (U+FF0F)   \ → ＼ (U+FF3C)   # → ＃ (U+FF03)   ? → ？ (U+FF1F)
//	| → ｜ (U+FF5C)   ' → ＇ (U+FF07)   % → ％ (U+FF05)
//	C0 controls U+0000..U+001F → U+2400..U+241F (control pictures), DEL → U+2421
//	C1 controls U+0080..U+009F → ～ (U+FF5E) followed by U+2480..U+249F
//
// A character of the id that is itself one of the replacements above, or the
// escape character ～, is written as ～ followed by the character. The mapping
// works character by character, so escapeKey(prefix) is a prefix of
// escapeKey(id) whenever prefix is a prefix of id: prefix queries on I| keys
// work on the escaped form.
const escapeRune = '\uFF5E'

var (
	escapeTo = map[rune]rune{
		'/': '\uFF0F', '\\': '\uFF3C', '#': '\uFF03', '?': '\uFF1F',
		'|': '\uFF5C', '\'': '\uFF07', '%': '\uFF05', 0x7F: '\u2421',
	}
	escapeFrom = func() map[rune]rune {
		m := make(map[rune]rune, len(escapeTo)+32)
		for k, v := range escapeTo {
			m[v] = k
		}
		for c := rune(0); c < 0x20; c++ {
			m[0x2400+c] = c
		}
		return m
	}()
)

const c1Base = 0x2480 // C1 control c is written as escapeRune, c1Base+(c-0x80)

// isReserved reports whether r is a replacement character or the escape
// character, which must be escaped where an id contains it.
func isReserved(r rune) bool {
	_, ok := escapeFrom[r]
	return ok || r == escapeRune
}

// escapeKey escapes s for use in a table key (see the mapping above).
func escapeKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r >= 0x80 && r < 0xA0:
			b.WriteRune(escapeRune)
			b.WriteRune(c1Base + r - 0x80)
		case isReserved(r):
			b.WriteRune(escapeRune)
			b.WriteRune(r)
		default:
			if to, ok := escapeTo[r]; ok {
				b.WriteRune(to)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// unescapeKey reverses escapeKey.
func unescapeKey(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == escapeRune:
			if i >= len(s) {
				return "", fmt.Errorf("escaped key %q ends with the escape character", s)
			}
			next, m := utf8.DecodeRuneInString(s[i:])
			i += m
			switch {
			case next >= c1Base && next < c1Base+0x20:
				b.WriteRune(next - c1Base + 0x80)
			case isReserved(next):
				b.WriteRune(next)
			default:
				return "", fmt.Errorf("escaped key %q has an unknown escape U+%04X", s, next)
			}
		default:
			if from, ok := escapeFrom[r]; ok {
				b.WriteRune(from)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String(), nil
}

// utf16Len is the length of s in UTF-16 code units, the unit of Azure's key
// and string limits.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// prefixEnd returns the smallest key greater than every key that starts with
// prefix, for a range query [prefix, prefixEnd(prefix)). It increments the
// last character, skipping the surrogate block and dropping characters that
// cannot be incremented, so that the bound holds both in code-point order and
// in UTF-16 order (the service may use either). Where the two orders differ
// the range can be a superset; callers filter the rows they read.
func prefixEnd(prefix string) string {
	rs := []rune(prefix)
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if r == 0xFFFF || r == utf8.MaxRune {
			continue
		}
		r++
		if r >= 0xD800 && r < 0xE000 {
			r = 0xE000
		}
		return string(rs[:i]) + string(r)
	}
	return ""
}

// timeKey formats t for a key.
func timeKey(t time.Time) string {
	return t.UTC().Truncate(100 * time.Nanosecond).Format(timeKeyLayout)
}

// storedTime is t as Azure Tables stores it: UTC at 100 ns resolution.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(100 * time.Nanosecond)
}

// partitionKey names partition p of a task hub with n partitions: p00, p01, …,
// zero-padded to the width of n-1 (at least two digits).
func partitionKey(p, n int) string {
	return fmt.Sprintf("p%0*d", digits(n-1), p)
}

// digits is the number of decimal digits of n, at least two.
func digits(n int) int {
	return max(2, len(strconv.Itoa(n)))
}

func instanceKey(id string) string { return "I|" + escapeKey(id) }

func historyPrefix(id, exec string) string {
	return "H|" + escapeKey(id) + keySep + escapeKey(exec) + keySep
}

func historyInstancePrefix(id string) string { return "H|" + escapeKey(id) + keySep }

func historyKey(id, exec string, seq int64) string {
	return historyPrefix(id, exec) + fmt.Sprintf("%0*d", seqDigits, seq)
}

// indexKey is the X| row of an instance: by status, then creation time.
func indexKey(s core.Status, created time.Time, id string) string {
	return "X|" + s.String() + keySep + timeKey(created) + keySep + escapeKey(id)
}

func indexStatusPrefix(s core.Status) string { return "X|" + s.String() + keySep }

func timersKey(id string) string     { return "T|" + escapeKey(id) }
func activitiesKey(id string) string { return "A|" + escapeKey(id) }

func outboxKey(id, unit string) string {
	return "O|" + escapeKey(id) + keySep + escapeKey(unit)
}

func outboxInstancePrefix(id string) string { return "O|" + escapeKey(id) + keySep }

// Partition keys of the rows that do not belong to a partition.
const (
	deadLetterPK = "dl"
	hostsPK      = "hosts"
)

// checkKey verifies that a key is one Azure accepts.
func checkKey(what, k string) error {
	if k == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if n := utf16Len(k); n > maxKeyChars {
		return fmt.Errorf("%s is %d characters long; Azure Tables allow %d", what, n, maxKeyChars)
	}
	for _, r := range k {
		if r < 0x20 || (r >= 0x7F && r < 0xA0) || strings.ContainsRune(`/\#?`, r) {
			return fmt.Errorf("%s %q has the forbidden character U+%04X", what, k, r)
		}
	}
	return nil
}
