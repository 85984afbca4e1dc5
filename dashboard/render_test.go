package dashboard

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/azdurable/azdurable/core"
)

func TestSessions(t *testing.T) {
	op, err := newOperator("0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	s := op.newSession(t0)
	switch {
	case strings.Contains(s, "0123456789abcdef"):
		t.Fatalf("session %q holds the token", s)
	case !op.validSession(s, t0.Add(time.Hour)):
		t.Fatal("a fresh session is not valid")
	case op.validSession(s, t0.Add(sessionLifetime+time.Second)):
		t.Fatal("an expired session is valid")
	}
	issued, mac, _ := strings.Cut(s, ".")
	for _, forged := range []string{"", "x", issued, issued + ".", "1." + mac, issued + "." + strings.Repeat("0", len(mac))} {
		if op.validSession(forged, t0) {
			t.Errorf("forged session %q is valid", forged)
		}
	}
	other, err := newOperator("0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	if other.validSession(s, t0) || other.csrf(s) == op.csrf(s) {
		t.Fatal("a session or CSRF token of another handler is valid: keys must be drawn per handler")
	}
	if op.csrf(s) == op.csrf(op.newSession(t0.Add(time.Second))) {
		t.Fatal("two sessions share a CSRF token")
	}
	if !op.tokenMatches("0123456789abcdef0123") || op.tokenMatches("0123456789abcdef012") || op.tokenMatches("") {
		t.Fatal("tokenMatches")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"instance?id=a%2Fb":       "instance?id=a%2Fb",
		"partitions":              "partitions",
		"":                        "instances",
		"//evil.example/":         "instances",
		"https://evil.example/":   "instances",
		"/instances":              "instances",
		"instances?x=\r\nSet-Foo": "instances",
		"signout":                 "instances",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFilter(t *testing.T) {
	f, q, err := parseFilter(url.Values{"status": {"running", "Failed", "RUNNING"}, "name": {" Fan "}, "prefix": {"a b"},
		"from": {"2026-05-01T10:00"}, "to": {"2026-05-02"}, "size": {"7"}, "page": {"tok"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Statuses) != 2 || q.Statuses[0] != core.StatusRunning || q.Statuses[1] != core.StatusFailed || !f.Statuses["Running"] {
		t.Errorf("statuses %v %v", q.Statuses, f.Statuses)
	}
	if q.Name != "Fan" || q.InstanceIDPrefix != "a b" || q.PageSize != 7 || q.Continuation != "tok" {
		t.Errorf("query %+v", q)
	}
	if !q.CreatedFrom.Equal(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)) || !q.CreatedTo.Equal(time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("range %v .. %v", q.CreatedFrom, q.CreatedTo)
	}
	for _, bad := range []url.Values{
		{"status": {"Sleeping"}},
		{"size": {"0"}},
		{"size": {"1001"}},
		{"size": {"x"}},
		{"from": {"yesterday"}},
		{"from": {"2026-05-02"}, "to": {"2026-05-01"}},
	} {
		if _, _, err := parseFilter(bad); err == nil {
			t.Errorf("parseFilter(%v) accepted it", bad)
		}
	}
	if _, q, err := parseFilter(url.Values{}); err != nil || q.PageSize != defaultPageSize {
		t.Errorf("defaults: %+v %v", q, err)
	}
}

func TestPayloadText(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want string
	}{
		{nil, ""},
		{[]byte(`{"a":[1,2]}`), "{\n  \"a\": [\n    1,\n    2\n  ]\n}"},
		{[]byte("plain <text>"), "plain <text>"},
		{[]byte(`["\u003cb\u003e \u0026", "\\u003c", "\u00e9"]`), "[\n  \"<b> &\",\n  \"\\\\u003c\",\n  \"\\u00e9\"\n]"},
		{[]byte{0xff, 0x00}, "base64: /wA="},
	} {
		if got := payloadText(c.in); got != c.want {
			t.Errorf("payloadText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	big := payloadText([]byte(strings.Repeat("é", maxShownPayload)))
	if len(big) > maxShownPayload+64 || !strings.Contains(big, "more bytes not shown") || !strings.HasPrefix(big, "éé") {
		t.Errorf("a large payload is shown as %d bytes ending %q", len(big), big[len(big)-40:])
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", -time.Second: "0s", 1500 * time.Microsecond: "2ms", 12345 * time.Millisecond: "12.3s",
		90 * time.Minute: "1h30m0s", 250 * time.Nanosecond: "0s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("no hub: %v", err)
	}
}
