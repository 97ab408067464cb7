package tts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/koelvoice/koel/audio"
)

// SpanTTS is the span of one synthesis (the text's length and the voice as
// attributes, never the text).
const SpanTTS = "koel.tts"

// Metered wraps a Synthesizer and measures every synthesis on an injected
// registry: koel_tts_seconds (by result: ok, error).
type Metered struct {
	next    Synthesizer
	seconds *prometheus.HistogramVec
	tracer  trace.Tracer
}

// Traced makes every synthesis a [SpanTTS] span on tp (nil: no spans) and
// returns m.
func (m *Metered) Traced(tp trace.TracerProvider) *Metered {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	m.tracer = tp.Tracer("github.com/koelvoice/koel/audio/tts")
	return m
}

// NewMetered wraps next and registers its histogram on reg. Wrap the
// outermost synthesizer (the cache) to measure what callers wait for.
func NewMetered(next Synthesizer, reg prometheus.Registerer) (*Metered, error) {
	if next == nil || reg == nil {
		return nil, errors.New("tts: metered synthesizer needs a synthesizer and a registerer")
	}
	m := &Metered{next: next, seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "koel_tts_seconds",
		Help:    "Time to synthesize one text for a caller (cache hits included), by result (ok, error).",
		Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"}), tracer: noop.NewTracerProvider().Tracer("")}
	if err := reg.Register(m.seconds); err != nil {
		return nil, fmt.Errorf("tts: register metrics: %w", err)
	}
	m.seconds.WithLabelValues("ok")
	m.seconds.WithLabelValues("error")
	return m, nil
}

// Synthesize implements [Synthesizer].
func (m *Metered) Synthesize(ctx context.Context, text string, v Voice) (audio.PCM, error) {
	ctx, span := m.tracer.Start(ctx, SpanTTS, trace.WithAttributes(
		attribute.Int("koel.tts.text_bytes", len(text)), attribute.String("koel.tts.voice", v.Name)))
	defer span.End()
	start := time.Now()
	pcm, err := m.next.Synthesize(ctx, text, v)
	result := "ok"
	if err != nil {
		result = "error"
		span.SetStatus(codes.Error, "synthesis failed")
	}
	m.seconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return pcm, err
}
