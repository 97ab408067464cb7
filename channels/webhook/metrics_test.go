package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestInboundMessagesCounted checks that the webhook channel counts an
// accepted message once in koel_channel_messages_total{channel="webhook",
// direction="inbound"}, as the platform adapters do: a replayed retry and a
// refused request are not counted.
func TestInboundMessagesCounted(t *testing.T) {
	e := newEnv(t, storetest.NewSQLite(t))
	inbound := map[string]string{"channel": "webhook", "direction": "inbound"}
	key := map[string]string{HeaderIdempotencyKeyIn: "once"}
	steps := []struct {
		name string
		body string
		hdr  map[string]string
		code int
		want float64
	}{
		{"accepted", logBody("ravi", "what are your store hours", 1), key, http.StatusOK, 1},
		{"replayed retry", logBody("ravi", "what are your store hours", 1), key, http.StatusOK, 1},
		{"another message", logBody("ravi", "where is my order", 1), nil, http.StatusOK, 2},
		{"NUL in the text", logBody("ravi", "a\x00b", 1), nil, http.StatusBadRequest, 2},
		{"bad token", logBody("ravi", "hi", 1), map[string]string{"Authorization": "Bearer wrong"}, http.StatusUnauthorized, 2},
		{"inactive connection", logBody("ravi", "hi", inactiveBusinessID), nil, http.StatusNotFound, 2},
	}
	for _, s := range steps {
		if w := e.post(PathLogMessage, s.body, s.hdr); w.Code != s.code {
			t.Fatalf("%s: %d %s, want %d", s.name, w.Code, w.Body, s.code)
		}
		if got := channeltest.CounterValue(t, e.reg, "koel_channel_messages_total", inbound); got != s.want {
			t.Fatalf("after %s: inbound = %v, want %v", s.name, got, s.want)
		}
	}
	if got := channeltest.CounterValue(t, e.reg, "koel_channel_messages_total", map[string]string{"channel": "webhook", "direction": "outbound"}); got != 0 {
		t.Errorf("the handler counted %v outbound messages; the sender counts them", got)
	}
}

// TestSenderCountsDeliveries checks the sender's side: an accepted
// delivery is koel_channel_messages_total{channel="webhook",
// direction="outbound"} with its latency, a failed attempt is
// koel_channel_delivery_failures_total{channel="webhook",class}.
func TestSenderCountsDeliveries(t *testing.T) {
	tests := []struct {
		status                  int
		outbound, latency, fail float64
		class                   string
	}{
		{http.StatusOK, 1, 1, 0, ""},
		{http.StatusNoContent, 1, 1, 0, ""},
		{http.StatusInternalServerError, 0, 0, 1, outbox.ClassServer},
		{http.StatusTooManyRequests, 0, 0, 1, outbox.ClassRateLimited},
		{http.StatusNotFound, 0, 0, 1, outbox.ClassClient},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.status) }))
			t.Cleanup(srv.Close)
			reg := prometheus.NewRegistry()
			m, err := platform.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_800_000_000, 0)
			s := NewSender(nil, func() time.Time { return now })
			s.Metrics = m
			err = s.Send(context.Background(), ivr.Connection{Channel: ivr.ChannelWebhook},
				ivr.OutboxItem{IdempotencyKey: "k", URL: srv.URL, CreatedAt: now.Add(-2 * time.Second)})
			if (err == nil) != (tt.fail == 0) {
				t.Fatalf("Send = %v", err)
			}
			counts := map[string]float64{
				"outbound": channeltest.CounterValue(t, reg, "koel_channel_messages_total", map[string]string{"channel": "webhook", "direction": "outbound"}),
				"latency":  channeltest.CounterValue(t, reg, "koel_channel_delivery_seconds", map[string]string{"channel": "webhook"}),
				"failures": channeltest.CounterValue(t, reg, "koel_channel_delivery_failures_total", map[string]string{"channel": "webhook", "class": tt.class}),
			}
			want := map[string]float64{"outbound": tt.outbound, "latency": tt.latency, "failures": tt.fail}
			for k, v := range want {
				if counts[k] != v {
					t.Errorf("%s = %v, want %v (all: %v)", k, counts[k], v, counts)
				}
			}
		})
	}
}
