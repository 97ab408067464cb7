package api

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

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// FuzzConverse runs the bot API on the real engine, the real FAQ bot and a
// real SQLite store: whatever the body, it answers 200 or a 4xx in the
// error shape, never a 500 or a panic, and a refused request stores no
// user.
func FuzzConverse(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","text":"hello"}`,
		`{"user_id":"u","text":""}`,
		`{"user_id":1,"text":"x"}`,
		`{"user_id":"u","text":"x","extra":1}`,
		`{"user_id":"u","text":"x"}{"a":1}`,
		`{"user_id":"fresh","text":"hi\u0000there"}`,
		`{"user_id":"fr\u0000esh","text":"hi"}`,
		`{"user_id":"fresh","text":"\ud800"}`,
		"{\"user_id\":\"fresh\",\"text\":\"caf\xe9\"}",
		`[]`, `null`, `"str"`, `{`, ``, "\x00\xff",
		`{"user_id":"` + strings.Repeat("u", 300) + `","text":"x"}`,
	} {
		f.Add(seed)
	}
	st := storetest.NewSQLite(f)
	ctx := context.Background()
	if _, err := demo.Bootstrap(ctx, st, demo.Options{Token: "tok", LoadFAQ: func(ctx context.Context, id int64, csv []byte) error {
		_, err := faq.Import(ctx, st, id, bytes.NewReader(csv), faq.ImportOptions{})
		return err
	}}); err != nil {
		f.Fatal(err)
	}
	eng, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: faq.New(st, faq.Options{})})
	if err != nil {
		f.Fatal(err)
	}
	r := mux.NewRouter()
	r.Handle("/api/bots/{business_id}/converse", &Converse{Businesses: st, Engine: eng})
	f.Fuzz(func(t *testing.T, body string) {
		var in ConverseRequest
		_ = json.Unmarshal([]byte(body), &in)
		userID := strings.TrimSpace(in.UserID)
		_, before := st.GetUser(ctx, 1, ivr.ChannelAPI, userID)
		req := httptest.NewRequest(http.MethodPost, "/api/bots/1/converse", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code == http.StatusOK {
			return
		}
		if w.Code < 400 || w.Code > 499 {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
		if !strings.Contains(w.Body.String(), `"error_message"`) {
			t.Fatalf("error without error_message: %s", w.Body)
		}
		if _, after := st.GetUser(ctx, 1, ivr.ChannelAPI, userID); errors.Is(before, ivr.ErrNotFound) && after == nil {
			t.Fatalf("refused %q (%d) but stored user %q", body, w.Code, userID)
		}
	})
}
