package outbox_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// BenchmarkDeliveries45msReceiver: throughput of the dispatcher to one
// integrator whose webhook takes 45 ms per request (issue 9's case: the old
// dispatcher did 1/45 ms = 22 replies/s). The b.N replies are stored first
// for 1,000 users (so conversations are many, each in order), then the
// clock runs from the dispatcher's start until the last one is recorded
// delivered. Reports deliveries/s; target >= 1,000.
func BenchmarkDeliveries45msReceiver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(45 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	st := storetest.NewSQLite(b)
	ctx := context.Background()
	biz := ivr.Business{Name: "bench", Active: true}
	if err := st.CreateBusiness(ctx, &biz); err != nil {
		b.Fatal(err)
	}
	conn := ivr.Connection{BusinessID: biz.ID, Channel: ivr.ChannelWebhook, Identifier: "bench", Active: true,
		Settings: ivr.ConnectionSettings{WebhookURL: srv.URL, SecretKey: "k"}}
	if err := st.CreateConnection(ctx, &conn); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	batch := make([]*ivr.OutboxItem, 0, 500)
	flush := func() {
		if err := st.AppendMessages(ctx, nil, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range b.N {
		it, err := outbox.NewReplyItem(outbox.Reply{Connection: conn, BusinessID: biz.ID, Recipient: fmt.Sprint("user-", i%1000), URL: srv.URL,
			Message: &ivr.Message{ID: int64(i + 1), Sender: ivr.SenderBot, Text: "The branch opens at nine.", CreatedAt: now}, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, it)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	d, err := outbox.New(outbox.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, nil))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(done)
		_ = d.Run(runCtx)
	}()
	for {
		left, err := st.ListOutbox(ctx, ivr.OutboxPending, 1)
		if err != nil {
			b.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	dead, err := st.ListOutbox(ctx, ivr.OutboxDead, 0)
	if err != nil || len(dead) != 0 {
		b.Fatalf("%d dead letters (%v)", len(dead), err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}
