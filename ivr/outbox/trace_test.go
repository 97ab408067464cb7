package outbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// TestDeliverySpans: each delivery attempt is a koel.delivery span with the
// item's ids and its result; a refused attempt is an error span with the
// failure class, and no span carries the delivery URL.
func TestDeliverySpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	f := newFixture(t, time.Minute)
	d, err := outbox.New(outbox.Config{Store: f.st, Now: f.clock.Now, BaseBackoff: time.Second, MaxBackoff: time.Minute,
		Lease: time.Minute, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, f.clock.Now))
	var refuse atomic.Bool
	refuse.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ids := f.enqueue(t, srv.URL, 0, `{"n":1}`)

	if _, err := d.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	refuse.Store(false)
	f.clock.Advance(2 * time.Second)
	if n, err := d.DeliverDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}

	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want one per attempt (2)", len(spans))
	}
	for i, want := range []struct {
		attempt int64
		result  string
		failed  bool
	}{{1, "failed", true}, {2, "delivered", false}} {
		s := spans[i]
		if s.Name() != ivr.SpanDelivery {
			t.Errorf("span %d is %q", i, s.Name())
		}
		attrs := map[string]any{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.AsInterface()
		}
		if attrs[string(ivr.AttrOutboxItemID)] != ids[0] || attrs[string(ivr.AttrAttempt)] != want.attempt ||
			attrs[string(ivr.AttrResult)] != want.result || attrs[string(ivr.AttrChannel)] != string(ivr.ChannelWebhook) {
			t.Errorf("span %d attributes = %v", i, attrs)
		}
		if (s.Status().Code.String() == "Error") != want.failed {
			t.Errorf("span %d status = %v, want failed %v", i, s.Status(), want.failed)
		}
		for _, v := range attrs {
			if str, ok := v.(string); ok && strings.Contains(str, srv.URL) {
				t.Errorf("span %d carries the delivery URL", i)
			}
		}
	}
}
