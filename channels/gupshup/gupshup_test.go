package gupshup_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/gupshup"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

const (
	apiKey       = "gupshup-api-key"
	clientSecret = "kore-app-client-secret"
	hoursAnswer  = "Our stores are open from nine in the morning to nine in the evening, Monday to Saturday, and from ten to six on Sunday."
)

// seedPayment is the seed's WhatsApp Pay success payload, verbatim.
const seedPayment = `{
   "waNumber": "919XXXXXXXX3",
   "mobile": "919XXXXXXXX",
  "interactive": "{\"payment\":{\"transaction_id\":\"31706099xxxx\",\"reference_id\":\"fastag091-12xx\",\"total_amount\":{\"offset\":100,\"value\":300},\"currency\":\"INR\",\"transaction_type\":\"upi\",\"status\":\"success\"},\"type\":\"payment\"}",
  "name": "ɹɐʞsxxxxx sxxxxxɹɥS",
  "type": "interactive",
  "timestamp": "1687160320000"
}`

const enterpriseText = `{"waNumber":"919800000003","mobile":"919811111111","name":"Asha","type":"text","text":"what are your opening hours","timestamp":"1687160320001"}`

// v2Text is the spec's self-serve v2 example (spec/channels.md §3.3).
const v2Text = `{"app":"DemoApp","timestamp":1580227766370,"version":2,"type":"message",
 "payload":{"id":"ABEGkYaYVSEEAhAL3SLAWwHKeKrt6s3FKB0c","source":"918x98xx21x4","type":"text",
   "payload":{"text":"what are your opening hours"},
   "sender":{"phone":"918x98xx21x4","name":"Drew","country_code":"91","dial_code":"8x98xx21x4"},
   "context":{"id":"gBEGkYaYVSEEAgnPFrOLcjkFjL8","gsId":"9b71295f-f7af-4c1f-b2b4-31b4a4867bad"}}}`

type fixture struct {
	stack  *channeltest.Stack
	fake   *channeltest.Platform
	router *mux.Router
	token  string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := channeltest.NewStack(t)
	fake := channeltest.NewGupshup(t, apiKey)
	gs := ivr.GupshupSettings{BaseURL: fake.URL(), Source: "919800000003", AppName: "BluebirdApp", APIKey: apiKey}
	plain := gs
	gs.AppToken = clientSecret
	s.Connect(t, gupshup.Channel, "gs1", ivr.ConnectionSettings{Gupshup: gs})
	s.Connect(t, gupshup.Channel, "plain", ivr.ConnectionSettings{Gupshup: plain})
	r := mux.NewRouter()
	(&gupshup.Adapter{Pipeline: s.Pipeline}).Routes(r)
	s.Register(gupshup.Channel, gupshup.NewSender(s.HTTPSender()))
	token := gupshup.SignJWT(map[string]any{"appId": "cs-1", "exp": time.Now().Add(time.Hour).Unix()}, clientSecret)
	return &fixture{stack: s, fake: fake, router: r, token: token}
}

func (f *fixture) post(identifier, auth, body string) (int, string) {
	h := http.Header{"Content-Type": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	w := channeltest.Serve(f.router, http.MethodPost, "/gupshup/"+identifier, b, h)
	return w.Code, w.Body.String()
}

func TestEnterpriseTextAnsweredThroughSendAPI(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 2; i++ {
		if code, resp := f.post("gs1", "Bearer "+f.token, enterpriseText); code != 200 {
			t.Fatalf("status %d: %s", code, resp)
		}
	}
	f.stack.DeliverDue(t)
	f.stack.DeliverDue(t)
	got := f.fake.Accepted()
	if len(got) != 1 {
		t.Fatalf("gupshup accepted %d (duplicates must be answered once), refused %d", len(got), len(f.fake.Refused()))
	}
	req := got[0]
	if req.Path != "/wa/api/v1/msg" || req.Header.Get("apikey") != apiKey {
		t.Fatalf("request %s apikey %q", req.Path, req.Header.Get("apikey"))
	}
	want := url.Values{"channel": {"whatsapp"}, "source": {"919800000003"}, "src.name": {"BluebirdApp"},
		"destination": {"919811111111"}, "message": {`{"text":"` + hoursAnswer + `","type":"text"}`}}.Encode()
	if string(req.Body) != want {
		t.Fatalf("form\n got %s\nwant %s", req.Body, want)
	}
}

func TestSeedErrorTable(t *testing.T) {
	f := newFixture(t)
	expired := gupshup.SignJWT(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}, clientSecret)
	other := gupshup.SignJWT(map[string]any{"exp": time.Now().Add(time.Hour).Unix()}, "another-secret")
	tests := []struct {
		name, identifier, auth, body string
		code                         int
		message                      string
	}{
		{"authorization header missing", "gs1", "", enterpriseText, 401, "Access token not found"},
		{"token signed with another secret", "gs1", "Bearer " + other, enterpriseText, 401, "Invalid access"},
		{"expired token", "gs1", expired, enterpriseText, 401, "Invalid access"},
		{"not a JWT", "gs1", "Bearer abc", enterpriseText, 401, "Invalid access"},
		{"JSON request body missing", "gs1", "Bearer " + f.token, "", 500, "Internal Server Error"},
		{"invalid streamId in the URL", "no-such-stream", "Bearer " + f.token, enterpriseText, 500, "Internal Server Error"},
		{"mobile missing", "gs1", "Bearer " + f.token, `{"waNumber":"919800000003","type":"text","text":"hi","timestamp":"1"}`, 500, "Internal Server Error"},
		{"body not JSON", "gs1", "Bearer " + f.token, `{"mobile":`, 500, "Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.post(tt.identifier, tt.auth, tt.body)
			if code != tt.code || !strings.Contains(body, `"`+tt.message+`"`) {
				t.Fatalf("got %d %s, want %d %q", code, body, tt.code, tt.message)
			}
			if f.stack.UserExists(t, gupshup.Channel, "919811111111") {
				t.Fatal("refused request stored a user")
			}
		})
	}
	// The app token itself is accepted as a static token.
	if code, body := f.post("gs1", clientSecret, v2Text); code != 200 {
		t.Fatalf("static app token: %d %s", code, body)
	}
	// Without an associated app no token is asked for.
	if code, body := f.post("plain", "", enterpriseText); code != 200 {
		t.Fatalf("connection without Associate an App: %d %s", code, body)
	}
}

func TestInboundShapes(t *testing.T) {
	tests := []struct {
		name, body string
		id, from   string
		text       string
	}{
		{"seed payment", seedPayment, "ent:919XXXXXXXX:1687160320000:interactive", "919XXXXXXXX", "Payment success: 3.00 INR, transaction 31706099xxxx, reference fastag091-12xx"},
		{"enterprise text", enterpriseText, "ent:919811111111:1687160320001:text", "919811111111", "what are your opening hours"},
		{"enterprise button reply", `{"waNumber":"1","mobile":"2","type":"interactive","interactive":"{\"type\":\"button_reply\",\"button_reply\":{\"id\":\"b1\",\"title\":\"Store hours\"}}","timestamp":"3"}`, "ent:2:3:interactive", "2", "Store hours"},
		{"enterprise list reply", `{"waNumber":"1","mobile":"2","type":"interactive","interactive":"{\"type\":\"list_reply\",\"list_reply\":{\"id\":\"l1\",\"title\":\"Returns\"}}","timestamp":"4"}`, "ent:2:4:interactive", "2", "Returns"},
		{"v2 text", v2Text, "ABEGkYaYVSEEAhAL3SLAWwHKeKrt6s3FKB0c", "918x98xx21x4", "what are your opening hours"},
		{"v2 button reply", `{"app":"A","timestamp":1,"version":2,"type":"message","payload":{"id":"g2","source":"91","type":"button_reply","payload":{"title":"Store hours","id":"x"}}}`, "g2", "91", "Store hours"},
		{"v2 message event", `{"app":"A","timestamp":1,"version":2,"type":"message-event","payload":{"id":"g3","type":"delivered","destination":"91"}}`, "", "", ""},
		{"v2 user event", `{"app":"A","timestamp":1,"version":2,"type":"user-event","payload":{"phone":"91","type":"opted-in"}}`, "", "", ""},
		{"enterprise image", `{"waNumber":"1","mobile":"2","type":"image","image":"{}","timestamp":"5"}`, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := gupshup.Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.text == "" {
				if len(msgs) != 0 {
					t.Fatalf("parsed %+v, want nothing", msgs)
				}
				return
			}
			if len(msgs) != 1 || msgs[0].ID != tt.id || msgs[0].From != tt.from || msgs[0].Text != tt.text {
				t.Fatalf("parsed %+v", msgs)
			}
		})
	}
}

func FuzzReceive(f *testing.F) {
	for _, s := range []string{seedPayment, enterpriseText, v2Text, `{"mobile":"1","type":"interactive","interactive":"{"}`} {
		f.Add([]byte(s))
	}
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := channeltest.Serve(fx.router, http.MethodPost, "/gupshup/gs1", body, http.Header{"Authorization": {"Bearer " + fx.token}})
		// The seed answers malformed bodies with 500 "Internal Server
		// Error"; anything else in the 5xx range is a bug.
		if w.Code >= 500 && !strings.Contains(w.Body.String(), "Internal Server Error") {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code == 500 && strings.Contains(w.Body.String(), "internal error") {
			t.Fatalf("unexpected failure for %q: %s", body, w.Body)
		}
	})
}

func TestQuickRepliesSentAsQuickReplyMessage(t *testing.T) {
	f := newFixture(t)
	conn, err := f.stack.Store.GetConnection(context.Background(), gupshup.Channel, "gs1")
	if err != nil {
		t.Fatal(err)
	}
	it, err := outbox.NewReplyItem(outbox.Reply{Connection: conn, BusinessID: 1, Recipient: "919811111111",
		Message: &ivr.Message{ID: 9, Text: "Anything else?", QuickReplies: []string{"Store hours", "Returns"}}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := gupshup.NewSender(f.stack.HTTPSender()).Send(context.Background(), conn, *it); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := f.fake.Accepted()
	want := `{"type":"quick_reply","msgid":"qr","content":{"type":"text","text":"Anything else?"},"options":[{"type":"text","title":"Store hours"},{"type":"text","title":"Returns"}]}`
	if len(got) != 1 || got[0].Form.Get("message") != want {
		t.Fatalf("sent %v\nwant message %s", got, want)
	}
}
