package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/koelvoice/koel/ivr"
)

// spanTree renders the recorded spans as "parent > child" lines, sorted,
// so a test can compare the shape of a turn's trace.
func spanTree(spans []sdktrace.ReadOnlySpan) map[string]sdktrace.ReadOnlySpan {
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		path := s.Name()
		for p := s.Parent(); p.IsValid(); {
			ps, ok := byID[p.SpanID().String()]
			if !ok {
				break
			}
			path = ps.Name() + " > " + path
			p = ps.Parent()
		}
		out[path] = s
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestTracesOfATurn runs a real KooKoo record turn (pocketsphinx) and a real
// bot API message through koel serve with an in-process span recorder, and
// checks each turn's span tree and its ids; no span carries the caller's
// number.
func TestTracesOfATurn(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	recs := newRecordings(t)
	cfg := voiceConfig(t, "")
	cfg.TracerProvider = tp
	srv := startServer(t, cfg)
	if srv.voice.sttState != "ok" {
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	base := srv.URL()
	const sid, caller = "7101", "09876543210"
	for _, st := range [][]string{
		{sid, "NewCall", "cid", caller, "called_number", "918065740671"},
		{sid, "Record", "data", recs.say(t, "q1", "how much is delivery"), "status", "silence"},
	} {
		if code, body := kookooGet(t, base, ev(st[0], st[1], st[2:]...)); code != http.StatusOK {
			t.Fatalf("%s: %d %s", st[1], code, body)
		}
	}
	call, err := srv.store.GetCall(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}

	voice := spanTree(rec.Ended())
	for _, path := range []string{
		ivr.SpanVoiceTurn,
		ivr.SpanVoiceTurn + " > " + ivr.SpanFetch,
		ivr.SpanVoiceTurn + " > " + ivr.SpanDecode,
		ivr.SpanVoiceTurn + " > " + ivr.SpanSTT,
		ivr.SpanVoiceTurn + " > " + ivr.SpanEngineTurn,
		ivr.SpanVoiceTurn + " > " + ivr.SpanEngineTurn + " > " + ivr.SpanBot,
	} {
		if _, ok := voice[path]; !ok {
			t.Errorf("voice turn: no span %q; spans: %v", path, keys(voice))
		}
	}
	if s, ok := voice[ivr.SpanVoiceTurn]; ok {
		a := attrs(s)
		if a[ivr.AttrCallID].AsString() != sid || a[ivr.AttrConversationID].AsInt64() != call.ConversationID || call.ConversationID == 0 {
			t.Errorf("voice turn attributes %v, want call id %s and conversation %d", a, sid, call.ConversationID)
		}
		if s.EndTime().Before(s.StartTime()) {
			t.Error("voice turn ends before it starts")
		}
	}
	if s, ok := voice[ivr.SpanVoiceTurn+" > "+ivr.SpanEngineTurn]; ok && attrs(s)[ivr.AttrChannel].AsString() != string(ivr.ChannelKooKoo) {
		t.Errorf("engine turn of a call: attributes %v", attrs(s))
	}

	// A text message through the bot API.
	n := len(rec.Ended())
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	if code, body := postJSON(t, base+"/api/bots/1/converse", auth, `{"user_id":"trace-user","text":"can i pay using upi"}`); code != http.StatusOK {
		t.Fatalf("bot API: %d %s", code, body)
	}
	text := spanTree(rec.Ended()[n:])
	turn, ok := text[ivr.SpanEngineTurn]
	if !ok {
		t.Fatalf("text message: no root %q; spans: %v", ivr.SpanEngineTurn, keys(text))
	}
	if _, ok := text[ivr.SpanEngineTurn+" > "+ivr.SpanBot]; !ok {
		t.Errorf("text message: no bot span; spans: %v", keys(text))
	}
	if a := attrs(turn); a[ivr.AttrConversationID].AsInt64() == 0 || a[ivr.AttrChannel].AsString() == "" {
		t.Errorf("text turn attributes %v, want a conversation id and a channel", a)
	}

	for _, s := range rec.Ended() {
		for _, kv := range s.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, caller) || strings.Contains(v, "trace-user") {
				t.Errorf("span %s attribute %s carries a caller or user id: %q", s.Name(), kv.Key, v)
			}
		}
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTracingConfig: tracing is off (a no-op provider) without an
// endpoint, and bad settings are refused with a clear error.
func TestTracingConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		tracing TracingConfig
		wantErr string
		noop    bool
	}{
		{name: "off by default", noop: true},
		{name: "otlp http", tracing: TracingConfig{OTLPEndpoint: "http://127.0.0.1:4318/v1/traces", SampleRatio: 0.5}},
		{name: "not a URL", tracing: TracingConfig{OTLPEndpoint: "127.0.0.1:4318"}, wantErr: "http(s) URL"},
		{name: "bad ratio", tracing: TracingConfig{OTLPEndpoint: "http://127.0.0.1:4318/v1/traces", SampleRatio: 2}, wantErr: "sample_ratio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, stop, err := newTracing(ctx, Config{Tracing: tc.tracing})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer stop(ctx)
			_, span := tp.Tracer("t").Start(ctx, "x")
			defer span.End()
			if got := span.SpanContext().IsValid(); got == tc.noop {
				t.Errorf("span context valid = %v, want no-op %v (%s)", got, tc.noop, fmt.Sprintf("%T", tp))
			}
		})
	}
}
