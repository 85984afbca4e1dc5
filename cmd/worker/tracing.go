package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/azdurable/azdurable/core"
)

// checkOTLPEndpoint checks the form of the -otlp-endpoint URL. Its errors do
// not quote the URL: it may carry credentials.
func checkOTLPEndpoint(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("otlp-endpoint is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("otlp-endpoint must be an http or https URL, for example http://127.0.0.1:4318")
	case u.Host == "":
		return errors.New("otlp-endpoint has no host")
	}
	return nil
}

// redactedEndpoint is the endpoint as it may be logged: scheme, host and path.
func redactedEndpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// newTracerProvider exports spans over OTLP/HTTP to the endpoint, in
// batches. Headers (OTEL_EXPORTER_OTLP_HEADERS) and the other standard
// OTEL_EXPORTER_OTLP_* variables are honoured by the exporter. Without a
// path, the endpoint gets the standard /v1/traces.
func newTracerProvider(ctx context.Context, endpoint, hostID string) (*sdktrace.TracerProvider, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, errors.New("otlp-endpoint is not a URL")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "azdurable-worker"),
		attribute.String("service.instance.id", hostID))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(core.TraceIDGenerator{})), nil
}
