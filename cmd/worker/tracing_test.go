package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/azdurable/azdurable/azprovider"
	"github.com/azdurable/azdurable/core"
	"github.com/azdurable/azdurable/samples"
	"github.com/azdurable/azdurable/test/azurite"
)

// otlpReceiver is a minimal OTLP/HTTP trace receiver: it keeps the spans of
// every export request.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	paths map[string]int
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.paths[r.URL.Path]++
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// The worker exports the spans of an orchestration started by a traced
// client: the execution under the client's span, the activities under the
// execution, all flushed when the worker stops.
func TestWorkerExportsTraces(t *testing.T) {
	cs := azurite.ForTest(t)
	hub := newHub(t)
	recv := &otlpReceiver{paths: map[string]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	exit := make(chan int, 1)
	var output syncBuffer
	go func() {
		exit <- run(runCtx, []string{"-host-id", "w-trace", "-partitions", "2", "-otlp-endpoint", srv.URL,
			"-poll-max-interval", "50ms"}, env(map[string]string{EnvConnectionString: cs, "AZDURABLE_TASKHUB": hub}), &output)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker output:\n%s", output.String())
		}
	})

	prov, err := azprovider.New(ctx, azprovider.Options{ConnectionString: cs, TaskHub: hub, Partitions: 2, CreateIfMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	client := core.NewClient(prov, core.WithClientTracerProvider(tp))
	id, err := client.Start(ctx, samples.HelloSequence, core.WithInstanceID("traced-hello"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.WaitForCompletion(ctx, id); err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case code := <-exit:
		if code != exitOK {
			t.Fatalf("exit code %d", code)
		}
	case <-ctx.Done():
		t.Fatal("the worker did not stop")
	}

	created := rec.Ended()
	if len(created) != 1 || !strings.HasPrefix(created[0].Name(), "create_orchestration ") {
		t.Fatalf("client spans %v; want one create span", created)
	}
	createID := created[0].SpanContext().SpanID()
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.paths["/v1/traces"] == 0 {
		t.Fatalf("export requests by path %v; want /v1/traces", recv.paths)
	}
	var exec *tracepb.Span
	activities := 0
	for _, s := range recv.spans {
		if hex.EncodeToString(s.TraceId) != created[0].SpanContext().TraceID().String() {
			t.Errorf("span %q in trace %x, not the client's", s.Name, s.TraceId)
		}
		if strings.HasPrefix(s.Name, "orchestration ") {
			exec = s
		}
	}
	if exec == nil || !bytes.Equal(exec.ParentSpanId, createID[:]) {
		t.Fatalf("no execution span under the client's span %s among %d spans", createID, len(recv.spans))
	}
	for _, s := range recv.spans {
		if strings.HasPrefix(s.Name, "activity ") {
			activities++
			if !bytes.Equal(s.ParentSpanId, exec.SpanId) {
				t.Errorf("activity span %q has parent %x, want the execution %x", s.Name, s.ParentSpanId, exec.SpanId)
			}
		}
	}
	if activities != len(samples.HelloCities()) {
		t.Errorf("%d activity spans, want %d", activities, len(samples.HelloCities()))
	}
	if len(recv.spans) != 1+activities {
		t.Errorf("%d spans exported, want the execution and its activities", len(recv.spans))
	}
}
