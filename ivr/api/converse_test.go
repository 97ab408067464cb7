package api_test

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
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestConverseRefusesBadInput: NUL bytes and invalid UTF-8 in user_id or
// text answer 400 with a clear error_message, and nothing is stored: no
// user, no conversation, no message (issue 9 defect 4), on both backends.
func TestConverseRefusesBadInput(t *testing.T) {
	cases := []struct {
		name, body, contentType string
		status                  int
		msg                     string
	}{
		{"NUL in text", `{"user_id":"fresh","text":"hi\u0000there"}`, "application/json", 400, "text contains a NUL byte"},
		{"NUL in user_id", `{"user_id":"fre\u0000sh","text":"hi"}`, "application/json", 400, "user_id contains a NUL byte"},
		{"invalid UTF-8 in text", "{\"user_id\":\"fresh\",\"text\":\"hi \xc0\xaf\"}", "application/json", 400, "not valid UTF-8"},
		{"invalid UTF-8 in user_id", "{\"user_id\":\"\xedfresh\",\"text\":\"hi\"}", "application/json", 400, "not valid UTF-8"},
		{"jsonp", `{"user_id":"fresh","text":"hi"}`, "application/jsonp", 415, "application/json"},
		{"charset latin1", `{"user_id":"fresh","text":"hi"}`, "application/json; charset=iso-8859-1", 415, "utf-8"},
		{"too long", `{"user_id":"fresh","text":"` + strings.Repeat("a", ivr.MaxTextBytes+1) + `"}`, "application/json", 413, "text is longer"},
	}
	for _, backend := range []struct {
		name string
		open func(testing.TB, ...store.Option) store.Store
	}{{"sqlite", storetest.NewSQLite}, {"postgres", storetest.NewPostgres}} {
		t.Run(backend.name, func(t *testing.T) {
			st := backend.open(t)
			ctx := context.Background()
			if _, err := demo.Bootstrap(ctx, st, demo.Options{Token: "tok", LoadFAQ: func(ctx context.Context, id int64, csv []byte) error {
				_, err := faq.Import(ctx, st, id, bytes.NewReader(csv), faq.ImportOptions{})
				return err
			}}); err != nil {
				t.Fatal(err)
			}
			eng, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: faq.New(st, faq.Options{})})
			if err != nil {
				t.Fatal(err)
			}
			r := mux.NewRouter()
			r.Handle("/api/bots/{business_id}/converse", &api.Converse{Businesses: st, Engine: eng})
			post := func(body, ct string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodPost, "/api/bots/1/converse", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer tok")
				req.Header.Set("Content-Type", ct)
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				return w
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					w := post(tc.body, tc.contentType)
					var body api.ErrorBody
					if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
						t.Fatalf("body %q: %v", w.Body, err)
					}
					if w.Code != tc.status || !strings.Contains(body.ErrorMessage, tc.msg) {
						t.Fatalf("got %d %q, want %d with %q", w.Code, body.ErrorMessage, tc.status, tc.msg)
					}
					for _, id := range []string{"fresh", "fre\x00sh"} {
						if u, err := st.GetUser(ctx, 1, ivr.ChannelAPI, id); !errors.Is(err, ivr.ErrNotFound) {
							t.Fatalf("user %q stored (%+v, %v)", id, u, err)
						}
					}
				})
			}
			// The same user with clean input is answered and stored.
			if w := post(`{"user_id":"fresh","text":"what are your store hours"}`, "application/json; charset=utf-8"); w.Code != http.StatusOK {
				t.Fatalf("clean input: %d %s", w.Code, w.Body)
			}
			if _, err := st.GetUser(ctx, 1, ivr.ChannelAPI, "fresh"); err != nil {
				t.Fatalf("clean input stored no user: %v", err)
			}
		})
	}
}
