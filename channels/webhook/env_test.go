package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// Test fixture: the real engine with the real FAQ bot on a real store.
const (
	testToken = "tok"
	// closedBusinessID is a business whose webhook connection requires
	// registration (auto_register off).
	closedBusinessID int64 = 2
	// inactiveBusinessID is a business whose webhook connection is switched
	// off.
	inactiveBusinessID int64 = 3
)

type env struct {
	st     store.Store
	router *mux.Router
	// reg holds the channel's metrics (koel_channel_*).
	reg *prometheus.Registry
}

// backends runs fn on SQLite and, when KOEL_TEST_DATABASE_URL is set, on
// PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, open func(t testing.TB) store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t testing.TB) store.Store { return storetest.NewSQLite(t) })
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, func(t testing.TB) store.Store { return storetest.NewPostgres(t) })
	})
}

func newEnv(t testing.TB, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	loadFAQ := func(ctx context.Context, businessID int64, csv []byte) error {
		_, err := faq.Import(ctx, st, businessID, bytes.NewReader(csv), faq.ImportOptions{})
		return err
	}
	if _, err := demo.Bootstrap(ctx, st, demo.Options{Token: testToken, WebhookURL: "http://127.0.0.1:9/hook", WebhookSecret: "s3cret", LoadFAQ: loadFAQ}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		id     int64
		active bool
	}{{closedBusinessID, true}, {inactiveBusinessID, false}} {
		biz := ivr.Business{ID: b.id, Name: "b", TokenHash: ivr.HashToken(testToken), ClientID: demo.ClientID, Active: true}
		if err := st.CreateBusiness(ctx, &biz); err != nil {
			t.Fatal(err)
		}
		conn := ivr.Connection{BusinessID: b.id, Channel: ivr.ChannelWebhook, Identifier: "b" + string(rune('0'+b.id)), Active: b.active,
			Settings: ivr.ConnectionSettings{WebhookURL: "http://127.0.0.1:9/hook2", SecretKey: "k"}}
		if err := st.CreateConnection(ctx, &conn); err != nil {
			t.Fatal(err)
		}
		if err := loadFAQ(ctx, b.id, demo.FAQ()); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: faq.New(st, faq.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics, err := platform.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	(&Channel{Store: st, Engine: eng, Metrics: metrics}).Routes(r)
	return &env{st: st, router: r, reg: reg}
}

// post sends body to path with the demo credentials and extra headers
// (a header with an empty value is removed).
func (e *env) post(path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("client-id", demo.ClientID)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	e.router.ServeHTTP(w, req)
	return w
}

// storedState is what the store holds for some users of the test
// businesses: whether each exists, its conversations' message counts, and
// the pending deliveries.
type storedState struct {
	Users    map[string]string
	Messages map[string]int
	Outbox   int
}

func (e *env) state(t testing.TB, authIDs ...string) storedState {
	t.Helper()
	ctx := context.Background()
	s := storedState{Users: map[string]string{}, Messages: map[string]int{}}
	for _, b := range []int64{demo.BusinessID, closedBusinessID, inactiveBusinessID} {
		for _, id := range authIDs {
			key := string(rune('0'+b)) + "/" + id
			u, err := e.st.GetUser(ctx, b, ivr.ChannelWebhook, id)
			if errors.Is(err, ivr.ErrNotFound) || errors.Is(err, ivr.ErrInvalid) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			s.Users[key] = map[bool]string{true: "registered", false: "unregistered"}[u.Registered]
			for no := int64(1); ; no++ {
				conv, err := e.st.GetConversationByNo(ctx, u.ID, no)
				if errors.Is(err, ivr.ErrNotFound) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				msgs, err := e.st.ListMessages(ctx, conv.ID, 0)
				if err != nil {
					t.Fatal(err)
				}
				s.Messages[key] += len(msgs)
			}
		}
	}
	items, err := e.st.ListOutbox(ctx, ivr.OutboxPending, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Outbox = len(items)
	return s
}

func (s storedState) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// errorMessage decodes the seed's error shape {"error_message": "..."},
// failing the test on any other shape.
func errorMessage(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body, err)
	}
	msg, ok := body["error_message"].(string)
	if !ok || len(body) != 1 || msg == "" {
		t.Fatalf("error body %s is not {\"error_message\": \"...\"}", w.Body)
	}
	return msg
}
