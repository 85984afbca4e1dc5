package leases

import (
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Host record metadata holds lists as "partition:value" pairs separated by
// commas: intents as "3:17,9:18" (partition:serial), expiries as
// "3:1767225600123" (partition:Unix milliseconds).

func formatIntents(in []Intent) string {
	parts := make([]string, 0, len(in))
	for _, i := range in {
		parts = append(parts, strconv.Itoa(i.Partition)+":"+strconv.FormatInt(i.Serial, 10))
	}
	return strings.Join(parts, ",")
}

func parseIntents(s string) []Intent {
	var out []Intent
	for p, v := range pairs(s) {
		out = append(out, Intent{Partition: p, Serial: v})
	}
	slices.SortFunc(out, func(a, b Intent) int { return a.Partition - b.Partition })
	return out
}

// formatExpiries lists the expiries by partition, leaving out those that
// would make the text longer than max bytes.
func formatExpiries(exp map[int]time.Time, max int) string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(exp)) {
		item := strconv.Itoa(p) + ":" + strconv.FormatInt(exp[p].UnixMilli(), 10)
		if b.Len()+len(item)+1 > max {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item)
	}
	return b.String()
}

func parseExpiries(s string) map[int]time.Time {
	out := map[int]time.Time{}
	for p, v := range pairs(s) {
		out[p] = time.UnixMilli(v)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// pairs yields the well-formed "int:int" items of a list; others are skipped.
func pairs(s string) iter.Seq2[int, int64] {
	return func(yield func(int, int64) bool) {
		if s == "" {
			return
		}
		for item := range strings.SplitSeq(s, ",") {
			ps, vs, ok := strings.Cut(item, ":")
			if !ok {
				continue
			}
			p, err1 := strconv.Atoi(ps)
			v, err2 := strconv.ParseInt(vs, 10, 64)
			if err1 != nil || err2 != nil || p < 0 {
				continue
			}
			if !yield(p, v) {
				return
			}
		}
	}
}
