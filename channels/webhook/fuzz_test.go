package webhook

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

type fakeStore struct{}

func (fakeStore) GetBusiness(_ context.Context, id int64) (ivr.Business, error) {
	if id != 1 {
		return ivr.Business{}, ivr.ErrNotFound
	}
	return ivr.Business{ID: 1, TokenHash: ivr.HashToken("tok"), ClientID: "c", Active: true}, nil
}

func (fakeStore) ListConnections(context.Context, int64) ([]ivr.Connection, error) {
	return []ivr.Connection{{ID: 1, BusinessID: 1, Channel: ivr.ChannelWebhook, Active: true,
		Settings: ivr.ConnectionSettings{AutoRegister: true, WebhookURL: "http://127.0.0.1:9/hook"}}}, nil
}

func (fakeStore) RegisterUser(_ context.Context, b int64, ch ivr.Channel, id string) (ivr.User, error) {
	return ivr.User{ID: 1, BusinessID: b, Channel: ch, ExternalID: id, Registered: true}, nil
}

type checkingEngine struct{ t *testing.T }

func (e checkingEngine) Handle(_ context.Context, in ivr.Inbound) (ivr.Reply, error) {
	if strings.TrimSpace(in.Text) == "" || len(in.Text) > ivr.MaxTextBytes || in.UserExternalID == "" || len(in.UserExternalID) > MaxAuthIDBytes {
		e.t.Fatalf("engine received input the channel should have refused: %+v", in)
	}
	msg := &ivr.Message{ID: 7, Text: "ok"}
	items, err := in.Deliver.Deliveries(in, ivr.User{ExternalID: in.UserExternalID}, ivr.Conversation{}, []*ivr.Message{msg})
	if err != nil || len(items) != 1 {
		e.t.Fatalf("deliveries: %v %v", items, err)
	}
	return ivr.Reply{Messages: []bot.Message{{Text: "ok"}}, Inbound: ivr.Message{ID: 1, Text: in.Text}}, nil
}

// FuzzLogMessage: any body gets 200 or a 4xx in the seed's error shape,
// never a 500 or a panic; only valid messages reach the engine.
func FuzzLogMessage(f *testing.F) {
	for _, seed := range []string{
		`{"user":{"auth_id":"a"},"message_body":"hi","message_type":0,"business_id":1}`,
		`{"user":{"auth_id":"a"},"message_body":"hi","business_id":2}`,
		`{"user":null,"message_body":"hi","business_id":1}`,
		`{"user":{"auth_id":""},"message_body":" ","business_id":1}`,
		`{"user":{"auth_id":"a"},"message_body":"hi","message_type":-1,"business_id":1}`,
		`{"user":{"auth_id":"a"},"message_body":"hi","business_id":1e99}`,
		`{"business_id":1,"user":{"auth_id":"a","x":1}}`,
		`{`, `[]`, `null`, ``, "\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := mux.NewRouter()
		(&Channel{Store: fakeStore{}, Engine: checkingEngine{t}}).Routes(r)
		req := httptest.NewRequest(http.MethodPost, PathLogMessage, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("client-id", "c")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code > 499) {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code != http.StatusOK && !strings.Contains(w.Body.String(), `"error_message"`) {
			t.Fatalf("error without error_message: %s", w.Body)
		}
	})
}
