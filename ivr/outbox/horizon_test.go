package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestRetryHorizonIsTime is the regression test of issue 9 defect 3: a
// receiver that is down keeps its replies pending for the retry horizon
// (24 h) however many attempts that takes, instead of dead-lettering them
// after 8 attempts (about two minutes); then the dead letter is listed,
// redelivered through the admin API and delivered once the receiver is
// back.
func TestRetryHorizonIsTime(t *testing.T) {
	var mu sync.Mutex
	down, hits := true, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		hits++
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := storetest.NewSQLite(t, store.WithClock(clock.Now))
	tn := newTenants(t, st, [2]string{srv.URL, srv.URL})
	created := clock.Now()
	id := tn.enqueue(t, 0, "u", 1, created).ID
	d, err := outbox.New(outbox.Config{Store: st, Now: clock.Now, Lease: time.Minute, BreakerThreshold: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(ivr.ChannelWebhook, webhook.NewSender(nil, clock.Now))
	ctx := context.Background()
	var it ivr.OutboxItem
	for attempt := 1; ; attempt++ {
		if attempt > 1000 {
			t.Fatal("still pending after 1000 attempts")
		}
		if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("attempt %d: DeliverDue = %d, %v", attempt, n, err)
		}
		if it, err = st.GetOutboxItem(ctx, id); err != nil {
			t.Fatal(err)
		}
		if it.Status == ivr.OutboxDead {
			break
		}
		if attempt == 8 && clock.Now().Sub(created) > 10*time.Minute {
			t.Fatalf("8 attempts took %v; the backoff grew too slowly", clock.Now().Sub(created))
		}
		clock.Advance(it.NextAttemptAt.Sub(clock.Now()))
	}
	age := clock.Now().Sub(created)
	// The last retry would have come after the horizon: it dies within one
	// maximum backoff (10 min, +25 % jitter) before the horizon.
	if age > 24*time.Hour || age < 24*time.Hour-13*time.Minute {
		t.Fatalf("dead-lettered %v after creation (%d attempts), want just under 24h", age, it.Attempts)
	}
	if it.Attempts < 100 || !strings.Contains(it.LastError, "receiver answered 503") {
		t.Fatalf("dead after %d attempts, error %q", it.Attempts, it.LastError)
	}

	// The dead letter is listed and redelivered through the admin API.
	r := mux.NewRouter()
	adm := r.PathPrefix("/admin/v1").Subrouter()
	adm.Use(outbox.RequireAdminToken("adm1n-token"))
	(&outbox.Admin{Store: st, Notifier: d, Now: clock.Now}).Routes(adm)
	api := httptest.NewServer(r)
	defer api.Close()
	var page outbox.DeadLetterPage
	adminDo(t, api.URL, http.MethodGet, "/admin/v1/outbox/dead", "", http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != id || page.Items[0].Attempts != it.Attempts {
		t.Fatalf("listed %+v", page)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	var res map[string]int64
	adminDo(t, api.URL, http.MethodPost, "/admin/v1/outbox/dead/redeliver", fmt.Sprintf(`{"ids":[%d]}`, id), http.StatusOK, &res)
	if res["redelivered"] != 1 {
		t.Fatalf("redeliver answered %v", res)
	}
	if n, err := d.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("after redelivery: DeliverDue = %d, %v", n, err)
	}
	if it, _ = st.GetOutboxItem(ctx, id); it.Status != ivr.OutboxDelivered {
		t.Fatalf("after redelivery the item is %s", it.Status)
	}
}

func adminDo(t *testing.T, base, method, path, body string, want int, out any) {
	t.Helper()
	adminDoToken(t, base, method, path, body, "adm1n-token", want, out)
}

func adminDoToken(t *testing.T, base, method, path, body, token string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var e map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, e, want)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSweepDeadLettersItemsNoAttemptReached: items held back past their
// horizon (behind an open breaker) are dead-lettered by the sweep.
func TestSweepDeadLettersItemsNoAttemptReached(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := storetest.NewSQLite(t, store.WithClock(clock.Now))
	tn := newTenants(t, st, [2]string{"http://127.0.0.1:1/", "http://127.0.0.1:1/"})
	old := tn.enqueue(t, 0, "u", 1, clock.Now()).ID
	clock.Advance(23 * time.Hour)
	young := tn.enqueue(t, 0, "v", 2, clock.Now()).ID
	d, err := outbox.New(outbox.Config{Store: st, Now: clock.Now, RetryHorizon: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour + time.Second)
	n, err := d.Expire(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	for id, want := range map[int64]ivr.OutboxStatus{old: ivr.OutboxDead, young: ivr.OutboxPending} {
		it, err := st.GetOutboxItem(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if it.Status != want {
			t.Errorf("item %d is %s, want %s", id, it.Status, want)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st := storetest.NewSQLite(t, store.WithClock(clock.Now))
	tn := newTenants(t, st, [2]string{"https://hooks.example.com/in?api_key=shh", "https://other.example.com/in"})
	ctx := context.Background()
	var ids []int64
	for i := range 5 {
		it := tn.enqueue(t, i%2, fmt.Sprint("u", i), int64(i+1), clock.Now())
		if err := st.MarkAttemptFailed(ctx, it.ID, "receiver answered 500", clock.Now(), true); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	r := mux.NewRouter()
	adm := r.PathPrefix("/admin/v1").Subrouter()
	adm.Use(outbox.RequireAdminToken("adm1n-token"))
	(&outbox.Admin{Store: st, Now: clock.Now}).Routes(adm)
	srv := httptest.NewServer(r)
	defer srv.Close()

	t.Run("auth", func(t *testing.T) {
		adminDoToken(t, srv.URL, http.MethodGet, "/admin/v1/outbox/dead", "", "", http.StatusUnauthorized, nil)
		adminDoToken(t, srv.URL, http.MethodGet, "/admin/v1/outbox/dead", "", "adm1n-tokem", http.StatusUnauthorized, nil)
		adminDoToken(t, srv.URL, http.MethodPost, "/admin/v1/outbox/dead/purge", `{"all":true}`, "adm1n", http.StatusUnauthorized, nil)
		off := mux.NewRouter()
		offAdm := off.PathPrefix("/admin/v1").Subrouter()
		offAdm.Use(outbox.RequireAdminToken(""))
		(&outbox.Admin{Store: st}).Routes(offAdm)
		offSrv := httptest.NewServer(off)
		defer offSrv.Close()
		adminDoToken(t, offSrv.URL, http.MethodGet, "/admin/v1/outbox/dead", "", "", http.StatusForbidden, nil)
		adminDoToken(t, offSrv.URL, http.MethodGet, "/admin/v1/outbox/dead", "", "anything", http.StatusForbidden, nil)
	})
	t.Run("list pages and masks", func(t *testing.T) {
		var page outbox.DeadLetterPage
		adminDo(t, srv.URL, http.MethodGet, "/admin/v1/outbox/dead?limit=2", "", http.StatusOK, &page)
		if len(page.Items) != 2 || page.NextAfterID != ids[1] {
			t.Fatalf("first page %+v", page)
		}
		if page.Items[0].URL != "https://hooks.example.com/in?api_key=***" || page.Items[0].Recipient != "u0" || page.Items[0].Channel != "webhook" {
			t.Errorf("item %+v", page.Items[0])
		}
		adminDo(t, srv.URL, http.MethodGet, fmt.Sprintf("/admin/v1/outbox/dead?limit=2&after_id=%d", page.NextAfterID), "", http.StatusOK, &page)
		if len(page.Items) != 2 || page.Items[0].ID != ids[2] {
			t.Fatalf("second page %+v", page)
		}
		adminDo(t, srv.URL, http.MethodGet, fmt.Sprintf("/admin/v1/outbox/dead?connection_id=%d", tn.conns[1].ID), "", http.StatusOK, &page)
		if len(page.Items) != 2 || page.NextAfterID != 0 {
			t.Fatalf("connection page %+v", page)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct{ method, path, body string }{
			{http.MethodGet, "/admin/v1/outbox/dead?limit=0", ""},
			{http.MethodGet, "/admin/v1/outbox/dead?limit=1001", ""},
			{http.MethodGet, "/admin/v1/outbox/dead?after_id=x", ""},
			{http.MethodPost, "/admin/v1/outbox/dead/redeliver", `{}`},
			{http.MethodPost, "/admin/v1/outbox/dead/purge", `{"ids":[-1]}`},
			{http.MethodPost, "/admin/v1/outbox/dead/purge", `{"everything":true}`},
			{http.MethodPost, "/admin/v1/outbox/dead/purge", `not json`},
		} {
			adminDo(t, srv.URL, tc.method, tc.path, tc.body, http.StatusBadRequest, nil)
		}
	})
	t.Run("redeliver and purge", func(t *testing.T) {
		var res map[string]int64
		adminDo(t, srv.URL, http.MethodPost, "/admin/v1/outbox/dead/redeliver", fmt.Sprintf(`{"connection_id":%d}`, tn.conns[1].ID), http.StatusOK, &res)
		if res["redelivered"] != 2 {
			t.Fatalf("redelivered %v", res)
		}
		adminDo(t, srv.URL, http.MethodPost, "/admin/v1/outbox/dead/purge", `{"all":true}`, http.StatusOK, &res)
		if res["purged"] != 3 {
			t.Fatalf("purged %v", res)
		}
		pending, err := st.ListOutbox(ctx, ivr.OutboxPending, 0)
		if err != nil || len(pending) != 2 {
			t.Fatalf("%d pending (%v), want the 2 redelivered", len(pending), err)
		}
	})
}
