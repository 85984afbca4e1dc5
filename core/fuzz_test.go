package core

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// payloadCases are payloads that must come back byte for byte from storage.
var payloadCases = []struct {
	name string
	data []byte
	raw  bool // stored readable, as raw JSON
}{
	{"codec output", []byte(`{"a":1,"b":["x","\u003cy\u003e"]}`), true},
	{"number", []byte(`42`), true},
	{"null", []byte(`null`), true},
	{"empty string", []byte(`""`), true},
	{"unicode", []byte(`"héllo wörld ✓ 日本語 🚀"`), true},
	{"escapes", []byte(`"tab\t quote\" slash\\ \u00e9"`), true},
	{"html", []byte(`"a<b>&c"`), false},
	{"html object", []byte(`{"html":"<script>x && y</script>"}`), false},
	{"whitespace", []byte(" {\"a\": 1,\n\t\"b\": [1, 2]} \r\n"), false},
	{"line separators", []byte("\"a\u2028b\u2029c\""), false},
	{"noncharacters", []byte("\"\uFFFE\uFFFF\""), false},
	{"invalid utf-8 in a string", []byte("\"\xff\xfe\""), false},
	{"not json", []byte(`not json at all`), false},
	{"binary", []byte{0, 1, 2, 0xff, 0xfe, '<', '"', '\\', '\n'}, false},
	{"truncated json", []byte(`{"a":`), false},
	{"two values", []byte(`1 2`), false},
}

// TestEventPayloadRoundTrip checks that payloads survive every way a provider
// stores them: in a history, in a message, and in a message nested in the
// provider's own JSON (an outbox row, a queue envelope).
func TestEventPayloadRoundTrip(t *testing.T) {
	for _, c := range payloadCases {
		t.Run(c.name, func(t *testing.T) {
			ev := &Event{Seq: 3, Kind: EventActivityCompleted, TaskID: 7, Data: c.data, Name: "a<b>&c"}
			b, err := EncodeEvents([]*Event{ev})
			if err != nil {
				t.Fatal(err)
			}
			if raw := bytes.Contains(b, []byte(`"d":`)); raw != c.raw {
				t.Errorf("stored raw = %v, want %v: %s", raw, c.raw, b)
			}
			if !bytes.Contains(b, []byte(`"name":"a<b>&c"`)) {
				t.Errorf("names are escaped: %s", b)
			}
			evs, err := DecodeEvents(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(evs[0].Data, c.data) {
				t.Fatalf("history: got %q, want %q (stored %s)", evs[0].Data, c.data, b)
			}

			m := &Message{ID: "m1", InstanceID: "i1", Event: ev}
			mb, err := EncodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessage(mb)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Event.Data, c.data) {
				t.Fatalf("message: got %q, want %q (stored %s)", got.Event.Data, c.data, mb)
			}

			nested, err := json.Marshal(struct {
				Msg json.RawMessage `json:"m"`
			}{mb})
			if err != nil {
				t.Fatal(err)
			}
			var outer struct {
				Msg json.RawMessage `json:"m"`
			}
			if err := json.Unmarshal(nested, &outer); err != nil {
				t.Fatal(err)
			}
			if got, err = DecodeMessage(outer.Msg); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Event.Data, c.data) {
				t.Fatalf("nested message: got %q, want %q (stored %s)", got.Event.Data, c.data, nested)
			}

			var rp RawPayload
			if err := (JSONCodec{}).Unmarshal(evs[0].Data, &rp); err != nil || !bytes.Equal(rp, c.data) {
				t.Fatalf("RawPayload: got %q, %v", rp, err)
			}
		})
	}
}

func TestEventEmptyPayloadRoundTrip(t *testing.T) {
	for _, data := range [][]byte{nil, {}} {
		b, err := EncodeEvents([]*Event{{Kind: EventActivityCompleted, TaskID: 1, Data: data}})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"d`)) {
			t.Errorf("an empty payload is stored: %s", b)
		}
		evs, err := DecodeEvents(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs[0].Data) != 0 {
			t.Fatalf("empty payload came back as %q", evs[0].Data)
		}
	}
}

func TestDecodeEventsRejectsMalformed(t *testing.T) {
	for _, in := range []string{
		``, `null`, `[]`, `{}`, `{"v":2,"events":[]}`, `{"v":1,"events":[null]}`,
		`{"v":1,"events":[{"seq":0}]}`, `{"v":1,"events":[{"kind":"NoSuchKind"}]}`,
		`{"v":1,"events":[{"kind":"ActivityFailed","fail":{"msg":"no kind"}}]}`,
		`{"v":1,"events":[{"kind":"ActivityFailed","fail":{"kind":"application","cause":{"msg":"x"}}}]}`,
		`{"v":1,"events":[{"kind":"ExecutionCompleted","status":"Done"}]}`,
		`{"v":1,"events":[{"kind":"ActivityCompleted","db":"not base64!"}]}`,
	} {
		if _, err := DecodeEvents([]byte(in)); err == nil {
			t.Errorf("DecodeEvents(%s) accepted it", in)
		}
	}
}

// seedHistories are real histories of several shapes, encoded, and the
// messages that made them.
func seedHistories(tb testing.TB) (histories, messages [][]byte) {
	tb.Helper()
	add := func(r *engineRun) {
		b, err := EncodeEvents(r.history)
		if err != nil {
			tb.Fatal(err)
		}
		histories = append(histories, b)
		for _, m := range r.messages {
			mb, err := EncodeMessage(m)
			if err != nil {
				tb.Fatal(err)
			}
			messages = append(messages, mb)
		}
	}
	for _, c := range []struct {
		name string
		in   int
	}{{"Sequence", 4}, {"FanOut", 6}} {
		r := newEngineRun(benchRegistry())
		if err := r.run(c.name, c.in); err != nil {
			tb.Fatal(err)
		}
		r.exec.close()
		add(r)
	}
	rng := rand.New(rand.NewPCG(11, 11))
	for range 12 {
		shape, events := genShape(rng)
		r := newEngineRun(propRegistry())
		if err := r.run("Prop", shape, events...); err != nil {
			tb.Fatal(err)
		}
		r.exec.close()
		add(r)
	}
	return histories, messages
}

func TestSeedHistoriesRoundTrip(t *testing.T) {
	histories, messages := seedHistories(t)
	for _, b := range histories {
		checkHistoryRoundTrip(t, b)
	}
	for _, b := range messages {
		checkMessageRoundTrip(t, b)
	}
}

func FuzzDecodeEvents(f *testing.F) {
	histories, _ := seedHistories(f)
	for _, b := range histories {
		f.Add(b)
	}
	for _, c := range payloadCases {
		b, err := EncodeEvents([]*Event{{Kind: EventEventRaised, Name: "e", MessageID: "m", Data: c.data}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"events":[{"kind":"ActivityCompleted","d":{"a": [1, 2]},"db":"AAE="}]}`))
	f.Add([]byte(`{"v":1,"events":[{"kind":"TimerCreated","fireAt":"2026-01-01T00:00:00+01:00","time":"0001-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"v":1,"events":[{"kind":"ActivityFailed","fail":{"kind":"application","msg":"x","cause":{"msg":"y"}}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkHistoryRoundTrip(t, b)
	})
}

// checkHistoryRoundTrip: the decoder returns a history or an error, never
// panics, and what it returns encodes to a stable form that keeps every
// payload.
func checkHistoryRoundTrip(t *testing.T, b []byte) {
	t.Helper()
	evs, err := DecodeEvents(b)
	if err != nil {
		return
	}
	first, err := EncodeEvents(evs)
	if err != nil {
		t.Fatalf("a decoded history does not encode: %v\ninput: %s", err, b)
	}
	again, err := DecodeEvents(first)
	if err != nil {
		t.Fatalf("an encoded history does not decode: %v\nencoded: %s", err, first)
	}
	if len(again) != len(evs) {
		t.Fatalf("%d events, then %d", len(evs), len(again))
	}
	for i := range evs {
		if !bytes.Equal(evs[i].Data, again[i].Data) {
			t.Fatalf("event %d: payload %q came back as %q", i, evs[i].Data, again[i].Data)
		}
	}
	second, err := EncodeEvents(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("encoding is not stable:\n%s\n%s", first, second)
	}
}

// FuzzReplayDecodedHistory: a history that decodes but was never written by
// the engine (corrupt, or from other code) fails the replay with an error
// or diverges; it never panics the host.
func FuzzReplayDecodedHistory(f *testing.F) {
	histories, _ := seedHistories(f)
	for _, b := range histories {
		f.Add(b)
	}
	reg := propRegistry()
	if err := reg.Merge(benchRegistry()); err != nil {
		f.Fatal(err)
	}
	cfg := newEngineRun(reg).cfg
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeEvents(b)
		if err != nil {
			return
		}
		e := newExecutor(cfg, "inst-1", 0)
		defer e.close()
		e.replay(evs)
		e.episode(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), []*Message{{ID: "t", InstanceID: "inst-1",
			Event: &Event{Kind: EventExecutionTerminated, Reason: "fuzz"}}})
		if !e.done && e.started {
			t.Fatalf("a terminated instance is still running: %s", e.status)
		}
	})
}

// FuzzEventPayload: any payload comes back byte for byte, from a history
// and from a message nested in a provider's own JSON.
func FuzzEventPayload(f *testing.F) {
	for _, c := range payloadCases {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev := &Event{Kind: EventEventRaised, Name: "e", Data: data}
		b, err := EncodeEvents([]*Event{ev})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := DecodeEvents(b)
		if err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if !bytes.Equal(evs[0].Data, data) {
			t.Fatalf("history: got %q, want %q (stored %s)", evs[0].Data, data, b)
		}
		mb, err := EncodeMessage(&Message{ID: "m", InstanceID: "i", Event: ev})
		if err != nil {
			t.Fatal(err)
		}
		nested, err := json.Marshal(map[string]json.RawMessage{"m": mb})
		if err != nil {
			t.Fatal(err)
		}
		var outer map[string]json.RawMessage
		if err := json.Unmarshal(nested, &outer); err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMessage(outer["m"])
		if err != nil {
			t.Fatalf("%v: %s", err, nested)
		}
		if !bytes.Equal(m.Event.Data, data) {
			t.Fatalf("nested message: got %q, want %q (stored %s)", m.Event.Data, data, nested)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	_, messages := seedHistories(f)
	for _, b := range messages {
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"id":"m","inst":"i","event":{"kind":"EventRaised","d":"x"}}`))
	f.Add([]byte(`{"v":1,"id":"m","inst":"i","event":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkMessageRoundTrip(t, b)
	})
}

func checkMessageRoundTrip(t *testing.T, b []byte) {
	t.Helper()
	m, err := DecodeMessage(b)
	if err != nil {
		return
	}
	first, err := EncodeMessage(m)
	if err != nil {
		t.Fatalf("a decoded message does not encode: %v\ninput: %s", err, b)
	}
	again, err := DecodeMessage(first)
	if err != nil {
		t.Fatalf("an encoded message does not decode: %v\nencoded: %s", err, first)
	}
	if !bytes.Equal(m.Event.Data, again.Event.Data) {
		t.Fatalf("payload %q came back as %q", m.Event.Data, again.Event.Data)
	}
	second, err := EncodeMessage(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("encoding is not stable:\n%s\n%s", first, second)
	}
}
