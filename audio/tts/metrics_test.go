package tts

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/koelvoice/koel/audio"
)

// scriptedSynth answers "fail" with an error and anything else with 20 ms
// of silence at 8 kHz.
type scriptedSynth struct{}

func (scriptedSynth) Synthesize(_ context.Context, text string, _ Voice) (audio.PCM, error) {
	if text == "fail" {
		return audio.PCM{}, errors.New("backend down")
	}
	return audio.PCM{Rate: 8000, Samples: make([]int16, 160)}, nil
}

// TestMeteredCountsAndTraces: every synthesis is observed by result and,
// when traced, is a koel.tts span holding the text's length and the voice,
// never the text; a failed one is an error span.
func TestMeteredCountsAndTraces(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := tracetest.NewSpanRecorder()
	m, err := NewMetered(scriptedSynth{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Traced(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	ctx := context.Background()
	if _, err := m.Synthesize(ctx, "welcome to bluebird", Voice{Name: "en-us"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Synthesize(ctx, "fail", Voice{}); err == nil {
		t.Fatal("the failing synthesis returned no error")
	}
	if n := testutil.CollectAndCount(m.seconds); n != 2 {
		t.Errorf("%d result series, want ok and error", n)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	for i, want := range []struct {
		bytes int64
		voice string
		code  codes.Code
	}{{19, "en-us", codes.Unset}, {4, "", codes.Error}} {
		s := spans[i]
		attrs := map[string]any{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.AsInterface()
			if kv.Value.AsInterface() == "welcome to bluebird" {
				t.Errorf("span %d carries the text", i)
			}
		}
		if s.Name() != SpanTTS || attrs["koel.tts.text_bytes"] != want.bytes || attrs["koel.tts.voice"] != want.voice || s.Status().Code != want.code {
			t.Errorf("span %d = %s %v %v", i, s.Name(), attrs, s.Status())
		}
	}
	// Untraced, it still measures and starts no spans.
	plain, err := NewMetered(scriptedSynth{}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Synthesize(ctx, "hello", Voice{}); err != nil {
		t.Fatal(err)
	}
	if len(rec.Ended()) != 2 {
		t.Error("an untraced synthesizer started a span")
	}
}
