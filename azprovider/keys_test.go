package azprovider

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/azdurable/azdurable/core"
)

// awkwardIDs are legal instance ids that stress the key escaping.
var awkwardIDs = []string{
	"plain",
	"orders/2024/0001",
	`back\slash#hash?query|pipe'quote%percent~tilde`,
	"ｆｕｌｌ／ｗｉｄｔｈ＼＃？｜＇％～",        // the replacement characters themselves
	"\u2400\u2421\u241f\u2480", // control pictures and the C1 escape range
	"unicode é 漢字 😀 \uFFFF \uFFFE",
	"space and + & = : ; , @ $ !",
	strings.Repeat("/", 256),
	strings.Repeat("～", 85),
	strings.Repeat("😀", 64),
	strings.Repeat("a", 256),
}

func TestEscapeKeyRoundTrip(t *testing.T) {
	for _, id := range awkwardIDs {
		if err := core.ValidateInstanceID(id, 0); err != nil {
			t.Fatalf("test id %q is not legal: %v", id, err)
		}
		esc := escapeKey(id)
		back, err := unescapeKey(esc)
		if err != nil || back != id {
			t.Errorf("unescape(escape(%q)) = %q, %v", id, back, err)
		}
		for _, k := range []string{instanceKey(id), historyKey(id, core.NewID(), 1234567890), outboxKey(id, core.NewID()),
			indexKey(core.StatusContinuedAsNew, testTime, id), timersKey(id), activitiesKey(id)} {
			if err := checkKey("key", k); err != nil {
				t.Errorf("id %q: %v", id, err)
			}
		}
		if n := utf16Len(esc); n > 256 {
			t.Errorf("escaped %q is %d UTF-16 units; want ≤ 256 for a 256-byte id", id, n)
		}
	}
}

func TestEscapeKeyControlCharacters(t *testing.T) {
	// Control characters are not legal in ids, but the escaping is total.
	var all []rune
	for r := rune(0); r < 0xA0; r++ {
		all = append(all, r)
	}
	s := string(all)
	esc := escapeKey(s)
	if err := checkKey("key", "I|"+esc); err != nil {
		t.Fatal(err)
	}
	back, err := unescapeKey(esc)
	if err != nil || back != s {
		t.Fatalf("round trip of every ASCII and C1 character failed: %v", err)
	}
	if !utf8.ValidString(esc) {
		t.Fatal("escaped key is not valid UTF-8")
	}
}

func TestEscapeKeyIsInjective(t *testing.T) {
	seen := map[string]string{}
	for _, id := range append(awkwardIDs, "a/b", "a／b", "a～／b", "a～b", "a|b", "a｜b") {
		k := escapeKey(id)
		if other, dup := seen[k]; dup && other != id {
			t.Fatalf("%q and %q escape to the same key %q", id, other, k)
		}
		seen[k] = id
	}
}

func TestUnescapeKeyRejectsBadEscapes(t *testing.T) {
	for _, s := range []string{"a～", "a～b"} {
		if _, err := unescapeKey(s); err == nil {
			t.Errorf("unescapeKey(%q) succeeded", s)
		}
	}
}

func TestPrefixRangesSelectExactlyThePrefix(t *testing.T) {
	ids := []string{"a", "a/", "a/b", "a/b/c", "a0", "a~", "a～", "ab", "b", "a/😀", "a/\uFFFF", "a/\uFFFFz", "a\uFFFF", "é", "éa", "😀", "😀x"}
	for _, prefix := range []string{"a", "a/", "a/b", "é", "😀", "a/\uFFFF", ""} {
		lo := "I|" + escapeKey(prefix)
		hi := prefixEnd(lo)
		for _, id := range ids {
			k := instanceKey(id)
			in := k >= lo && (hi == "" || k < hi) // code-point (Go) order
			inUTF16 := utf16Less(lo, k, true) && (hi == "" || utf16Less(k, hi, false))
			want := strings.HasPrefix(id, prefix)
			if want && (!in || !inUTF16) {
				t.Errorf("prefix %q: %q is outside [%q, %q)", prefix, id, lo, hi)
			}
			// A prefix ending in U+FFFF cannot be incremented in place: its range
			// is a superset, and queries filter what they read.
			if !want && in && !strings.HasSuffix(prefix, "\uFFFF") {
				t.Errorf("prefix %q: %q is inside [%q, %q) in code-point order", prefix, id, lo, hi)
			}
		}
	}
}

// utf16Less compares as the service may: by UTF-16 code units.
func utf16Less(a, b string, orEqual bool) bool {
	ua, ub := toUTF16(a), toUTF16(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	if len(ua) == len(ub) {
		return orEqual
	}
	return len(ua) < len(ub)
}

func toUTF16(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
		} else {
			out = append(out, uint16(r))
		}
	}
	return out
}

func TestHistoryKeysSortBySeq(t *testing.T) {
	var keys []string
	for _, seq := range []int64{10, 2, 9999999999, 0, 100} {
		keys = append(keys, historyKey("x", "e", seq))
	}
	sort.Strings(keys)
	want := []int64{0, 2, 10, 100, 9999999999}
	for i, k := range keys {
		if k != historyKey("x", "e", want[i]) {
			t.Fatalf("sorted keys %v", keys)
		}
	}
}

func TestPartitionKeysAndQueueNames(t *testing.T) {
	cases := []struct {
		n, p int
		want string
	}{{1, 0, "p00"}, {16, 15, "p15"}, {100, 99, "p99"}, {101, 100, "p100"}, {256, 7, "p007"}}
	for _, c := range cases {
		if got := partitionKey(c.p, c.n); got != c.want {
			t.Errorf("partitionKey(%d, %d) = %q, want %q", c.p, c.n, got, c.want)
		}
	}
	p := &Provider{hub: "hub", n: 256}
	if got := p.controlQueueName(5); got != "hub-control-005" {
		t.Errorf("control queue name %q", got)
	}
	p.n = 16
	if got := p.controlQueueName(5); got != "hub-control-05" {
		t.Errorf("control queue name %q", got)
	}
}

func TestTimeKeysSortByTime(t *testing.T) {
	a, b := testTime, testTime.Add(100)
	if !(timeKey(a) < timeKey(b)) || len(timeKey(a)) != len(timeKey(b.AddDate(3000, 0, 0))) {
		t.Fatalf("time keys %q %q", timeKey(a), timeKey(b))
	}
}

// TestTooLongInstanceIDsAreRefused: every entry point refuses an id over
// 256 bytes with core.ErrInvalidInput and a message that gives the limit,
// before any storage call (the provider here has no reachable storage).
func TestTooLongInstanceIDsAreRefused(t *testing.T) {
	p, err := newProvider(Options{ConnectionString: "UseDevelopmentStorage=true", TaskHub: "idlimits", Partitions: 4})
	must(t, err)
	long := strings.Repeat("é", 129) // 258 bytes
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, core.ErrInvalidInput) || !strings.Contains(err.Error(), "limit is 256") {
			t.Errorf("%s: %v", what, err)
		}
	}
	_, err = p.GetInstance(ctx, long, false)
	check("GetInstance", err)
	_, err = p.GetHistory(ctx, long)
	check("GetHistory", err)
	_, err = p.LoadInstance(ctx, p.PartitionOf(long), long)
	check("LoadInstance", err)
	check("SendMessages", p.SendMessages(ctx, []*core.Message{eventMessage(long, "e", nil)}))
	res, err := p.Commit(ctx, p.PartitionOf(long), &core.CommitBatch{Episodes: []*core.Episode{newInstanceEpisode(long, testTime)}})
	must(t, err)
	check("Commit", res[0].Err)
	if n := len(p.Stats()); n != 0 {
		t.Errorf("storage was called: %v", p.Stats())
	}
}
