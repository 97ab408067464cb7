package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
)

type oneBusiness struct{}

func (oneBusiness) GetBusiness(_ context.Context, id int64) (ivr.Business, error) {
	if id != 1 {
		return ivr.Business{}, ivr.ErrNotFound
	}
	return ivr.Business{ID: 1, TokenHash: ivr.HashToken("tok"), Active: true}, nil
}

type echoEngine struct{}

func (echoEngine) Handle(_ context.Context, in ivr.Inbound) (ivr.Reply, error) {
	if in.Text == "" || len(in.Text) > ivr.MaxTextBytes || in.UserExternalID == "" {
		panic("engine received input the API should have refused")
	}
	return ivr.Reply{Messages: []bot.Message{{Text: in.Text}}}, nil
}

// FuzzConverse: whatever the body, the bot API answers 200 or a 4xx in the
// error shape, never a 500 or a panic, and never hands the engine input it
// should have refused.
func FuzzConverse(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","text":"hello"}`,
		`{"user_id":"u","text":""}`,
		`{"user_id":1,"text":"x"}`,
		`{"user_id":"u","text":"x","extra":1}`,
		`{"user_id":"u","text":"x"}{"a":1}`,
		`[]`, `null`, `"str"`, `{`, ``, "\x00\xff",
		`{"user_id":"` + strings.Repeat("u", 300) + `","text":"x"}`,
	} {
		f.Add(seed)
	}
	r := mux.NewRouter()
	r.Handle("/api/bots/{business_id}/converse", &Converse{Businesses: oneBusiness{}, Engine: echoEngine{}})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/api/bots/1/converse", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code > 499) {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
		if w.Code != http.StatusOK && !strings.Contains(w.Body.String(), `"error_message"`) {
			t.Fatalf("error without error_message: %s", w.Body)
		}
	})
}
