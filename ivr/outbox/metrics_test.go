package outbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestMetrics: attempts and failures by channel and class, latency by
// channel, and the depth and age gauges read from the store at scrape time,
// all on the injected registry and clean by Prometheus's linter.
func TestMetrics(t *testing.T) {
	codes := []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusNotFound}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if len(codes) > 0 {
			w.WriteHeader(codes[0])
			codes = codes[1:]
		}
	}))
	defer srv.Close()
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := storetest.NewSQLite(t, store.WithClock(clock.Now))
	tn := newTenants(t, st, [2]string{srv.URL, srv.URL})
	reg := prometheus.NewPedanticRegistry()
	d, err := outbox.New(outbox.Config{Store: st, Stats: st, Registerer: reg, Now: clock.Now, Lease: time.Minute, BreakerThreshold: 100})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, clock.Now))
	ctx := context.Background()
	tn.enqueue(t, 0, "a", 1, clock.Now())
	tn.enqueue(t, 0, "b", 2, clock.Now())
	tn.enqueue(t, 0, "c", 3, clock.Now())
	tn.enqueue(t, 0, "d", 4, clock.Now())
	// The four go out at once; each gets one of the answers.
	for range 4 {
		if _, err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(90 * time.Second)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP koel_outbox_failures_total Failed outbox delivery attempts, by channel and class (timeout, network, rate_limited, server, client, redirect, config, other).
# TYPE koel_outbox_failures_total counter
koel_outbox_failures_total{channel="webhook",class="client"} 1
koel_outbox_failures_total{channel="webhook",class="rate_limited"} 1
koel_outbox_failures_total{channel="webhook",class="server"} 1
# HELP koel_outbox_items Outbox items waiting (pending) or dead-lettered (dead), by channel.
# TYPE koel_outbox_items gauge
koel_outbox_items{channel="webhook",status="dead"} 1
koel_outbox_items{channel="webhook",status="pending"} 2
# HELP koel_outbox_oldest_pending_age_seconds Age of the oldest pending outbox item, by channel.
# TYPE koel_outbox_oldest_pending_age_seconds gauge
koel_outbox_oldest_pending_age_seconds{channel="webhook"} 90
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "koel_outbox_failures_total", "koel_outbox_items", "koel_outbox_oldest_pending_age_seconds"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "koel_outbox_delivery_latency_seconds"); n != 1 {
		t.Fatalf("%d latency series, want 1 (webhook)", n)
	}
	attempts := `
# HELP koel_outbox_attempts_total Outbox delivery attempts, by channel and result (delivered, retry, dead).
# TYPE koel_outbox_attempts_total counter
koel_outbox_attempts_total{channel="webhook",result="dead"} 1
koel_outbox_attempts_total{channel="webhook",result="delivered"} 1
koel_outbox_attempts_total{channel="webhook",result="retry"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(attempts), "koel_outbox_attempts_total"); err != nil {
		t.Fatal(err)
	}
}
