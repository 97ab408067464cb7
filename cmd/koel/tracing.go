package main

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracingConfig turns on OpenTelemetry spans per turn (fetch, decode, STT,
// bot), exported over OTLP/HTTP. Off by default: koel then uses a no-op
// tracer provider and spans cost nothing.
type TracingConfig struct {
	// OTLPEndpoint is the OTLP/HTTP traces URL, for example
	// http://127.0.0.1:4318/v1/traces (KOEL_OTLP_ENDPOINT); empty: off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of turns traced, in (0, 1] (0 = 1: all).
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute ("" = koel).
	ServiceName string `yaml:"service_name"`
}

// newTracing returns the tracer provider the server's components get and
// the function that flushes and stops it. A provider set in code
// (cfg.TracerProvider) wins; without an endpoint it is a no-op provider.
func newTracing(ctx context.Context, cfg Config) (trace.TracerProvider, func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	if cfg.TracerProvider != nil {
		return cfg.TracerProvider, none, nil
	}
	t := cfg.Tracing
	if t.OTLPEndpoint == "" {
		return noop.NewTracerProvider(), none, nil
	}
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("tracing: otlp_endpoint must be an http(s) URL such as http://127.0.0.1:4318/v1/traces")
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		return nil, nil, fmt.Errorf("tracing: sample_ratio %v is not in (0, 1]", t.SampleRatio)
	}
	ratio := t.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	name := t.ServiceName
	if name == "" {
		name = "koel"
	}
	// The exporter connects lazily: an unreachable collector drops spans,
	// it does not stop koel.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(t.OTLPEndpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: otlp exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return tp, tp.Shutdown, nil
}
