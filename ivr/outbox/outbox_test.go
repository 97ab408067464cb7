package outbox_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

const secret = "s3cret"

type fixture struct {
	st    store.Store
	clock *storetest.Clock
	conn  ivr.Connection
	d     *outbox.Dispatcher
}

func newFixture(t *testing.T, maxBackoff time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	f.st = storetest.NewSQLite(t, store.WithClock(f.clock.Now))
	b := ivr.Business{Name: "b", Active: true}
	if err := f.st.CreateBusiness(ctx, &b); err != nil {
		t.Fatal(err)
	}
	f.conn = ivr.Connection{BusinessID: b.ID, Channel: ivr.ChannelWebhook, Identifier: "w", Active: true,
		Settings: ivr.ConnectionSettings{SecretKey: secret}}
	if err := f.st.CreateConnection(ctx, &f.conn); err != nil {
		t.Fatal(err)
	}
	var err error
	f.d, err = outbox.New(outbox.Config{Store: f.st, Now: f.clock.Now, BaseBackoff: time.Second, MaxBackoff: maxBackoff, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, f.clock.Now))
	return f
}

func (f *fixture) enqueue(t *testing.T, url string, maxAttempts int, bodies ...string) []int64 {
	t.Helper()
	var items []*ivr.OutboxItem
	for i, b := range bodies {
		items = append(items, &ivr.OutboxItem{ConnectionID: f.conn.ID, IdempotencyKey: fmt.Sprintf("key-%d-%s", i, b), URL: url,
			Body: []byte(b), ContentType: "application/json", Status: ivr.OutboxPending, MaxAttempts: maxAttempts, NextAttemptAt: f.clock.Now()})
	}
	if err := f.st.AppendMessages(context.Background(), nil, items); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func (f *fixture) item(t *testing.T, id int64) ivr.OutboxItem {
	t.Helper()
	it, err := f.st.GetOutboxItem(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// hook records what it receives and answers with the status codes given in
// turn (200 after they run out).
type hook struct {
	mu       sync.Mutex
	statuses []int
	got      []*http.Request
	bodies   []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r)
	h.bodies = append(h.bodies, string(b))
	code := http.StatusOK
	if len(h.statuses) > 0 {
		code, h.statuses = h.statuses[0], h.statuses[1:]
	}
	w.WriteHeader(code)
}

func TestDeliveryIsSignedKeyedAndInOrder(t *testing.T) {
	f := newFixture(t, time.Minute)
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ids := f.enqueue(t, srv.URL, 0, `{"n":1}`, `{"n":2}`, `{"n":3}`)

	n, err := f.d.DeliverDue(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	if len(h.bodies) != 3 || h.bodies[0] != `{"n":1}` || h.bodies[2] != `{"n":3}` {
		t.Fatalf("bodies = %q, want the three in order", h.bodies)
	}
	for i, r := range h.got {
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), []byte(h.bodies[i]), f.clock.Now(), time.Minute); err != nil {
			t.Fatalf("delivery %d signature: %v", i, err)
		}
		if r.Header.Get(webhook.HeaderIdempotencyKey) == "" || r.Header.Get(webhook.HeaderAttempt) != "1" || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("delivery %d headers = %v", i, r.Header)
		}
	}
	for _, id := range ids {
		if it := f.item(t, id); it.Status != ivr.OutboxDelivered || it.Attempts != 1 {
			t.Fatalf("item %d = %s after %d attempts", id, it.Status, it.Attempts)
		}
	}
	if n, err := f.d.DeliverDue(context.Background()); n != 0 || err != nil {
		t.Fatalf("delivered items were claimed again: %d %v", n, err)
	}
}

func TestRetriesBackOffExponentiallyThenDeadLetter(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	h := &hook{statuses: []int{500, 503, 408, 502, 500}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	id := f.enqueue(t, srv.URL, 5, `{}`)[0]
	ctx := context.Background()

	var delays []time.Duration
	for attempt := 1; attempt <= 5; attempt++ {
		if n, err := f.d.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("attempt %d: DeliverDue = %d, %v", attempt, n, err)
		}
		it := f.item(t, id)
		if it.Attempts != attempt {
			t.Fatalf("attempts = %d, want %d", it.Attempts, attempt)
		}
		if attempt == 5 {
			if it.Status != ivr.OutboxDead || it.LastError != "receiver answered 500" {
				t.Fatalf("after the last attempt: %s %q, want dead", it.Status, it.LastError)
			}
			break
		}
		if it.Status != ivr.OutboxPending {
			t.Fatalf("attempt %d: status %s", attempt, it.Status)
		}
		delay := it.NextAttemptAt.Sub(f.clock.Now())
		delays = append(delays, delay)
		// Not due a moment before the delay; due at it.
		f.clock.Advance(delay - time.Millisecond)
		if n, _ := f.d.DeliverDue(ctx); n != 0 {
			t.Fatalf("attempt %d retried before its backoff", attempt)
		}
		f.clock.Advance(time.Millisecond)
	}
	// 1 s, 2 s, 4 s, 8 s (capped at 10 s) with ±25 % jitter.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		lo, hi := want*3/4, want*5/4
		if hi > 10*time.Second*5/4 {
			hi = 10 * time.Second * 5 / 4
		}
		if delays[i] < lo || delays[i] > hi {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i+1, delays[i], lo, hi)
		}
	}
	f.clock.Advance(time.Hour)
	if n, _ := f.d.DeliverDue(ctx); n != 0 {
		t.Fatal("a dead item was attempted again")
	}
	if len(h.got) != 5 {
		t.Fatalf("receiver saw %d attempts, want 5", len(h.got))
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	f := newFixture(t, time.Minute)
	target := &hook{}
	tsrv := httptest.NewServer(target)
	defer tsrv.Close()
	redirect := httptest.NewServer(http.RedirectHandler(tsrv.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	id := f.enqueue(t, redirect.URL, 3, `{}`)[0]
	if _, err := f.d.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(target.got) != 0 {
		t.Fatal("the redirect was followed")
	}
	if it := f.item(t, id); it.Status != ivr.OutboxPending || it.LastError != "receiver answered 307" {
		t.Fatalf("item = %s %q", it.Status, it.LastError)
	}
}
