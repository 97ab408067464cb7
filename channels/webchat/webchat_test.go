package webchat_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/webchat"
	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

const (
	domain      = "https://a9sn38h.app.link"
	eventSecret = "event-webhook-secret"
	hoursAnswer = "Our stores are open from nine in the morning to nine in the evening, Monday to Saturday, and from ten to six on Sunday."
	authError   = `{"errors":[{"status":401,"source":{},"title":"Error","code":"AUTHORIZATION_REQUIRED","detail":"Authorization Required"}]}` + "\n"
)

type fixture struct {
	stack    *channeltest.Stack
	events   *channeltest.Platform
	router   *mux.Router
	withHook ivr.Connection
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := channeltest.NewStack(t)
	events := channeltest.NewReceiver(t)
	s.Connect(t, webchat.Channel, "7", ivr.ConnectionSettings{Webchat: ivr.WebchatSettings{CustomDomains: []string{"https://03jd874he983h.mywebsite.com", domain}}})
	hook := s.Connect(t, webchat.Channel, "8", ivr.ConnectionSettings{Webchat: ivr.WebchatSettings{CustomDomains: []string{domain},
		EventWebhookURL: events.URL() + "/events", EventWebhookSecret: eventSecret}})
	r := mux.NewRouter()
	(&webchat.API{Pipeline: s.Pipeline, Store: s.Store}).Routes(r)
	s.Register(webchat.Channel, webchat.NewEventSender(s.HTTPSender()))
	return &fixture{stack: s, events: events, router: r, withHook: hook}
}

func (f *fixture) call(path, auth, body string) (int, string) {
	h := http.Header{"Content-Type": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	w := channeltest.Serve(f.router, http.MethodPost, path, []byte(body), h)
	return w.Code, w.Body.String()
}

func (f *fixture) register(t *testing.T, app, body string) map[string]any {
	t.Helper()
	code, resp := f.call("/api/webchat_apps/"+app+"/user", "", body)
	if code != 200 {
		t.Fatalf("register: %d %s", code, resp)
	}
	var u map[string]any
	if err := json.Unmarshal([]byte(resp), &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func TestRegisterUser(t *testing.T) {
	f := newFixture(t)
	u := f.register(t, "7", `{"domain":"`+domain+`"}`)
	id, _ := u["webchat_id"].(string)
	if !regexp.MustCompile(`^webchat\.[a-z2-7]{26}$`).MatchString(id) {
		t.Fatalf("generated webchat_id %q", id)
	}
	// Every field of the seed's 200 example.
	want := []string{"_isDeleted", "active", "attributes", "bot_id", "channel", "clicks", "created_at", "delay", "first_name", "id",
		"impressions", "is_group", "last_message_at", "last_name", "sentiment", "sessions", "updated_at", "webchat_app_id", "webchat_id"}
	if got := keys(u); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("bot_user keys %v\nwant %v", got, want)
	}
	attrs := u["attributes"].(map[string]any)
	if u["channel"] != "web" || u["active"] != true || u["bot_id"] != 1.0 || attrs["webchat_id"] != id || attrs["source"] != domain ||
		!strings.HasPrefix(u["first_name"].(string), "Webchat Guest ") {
		t.Fatalf("bot_user %v", u)
	}
	other := f.register(t, "7", `{"domain":"`+domain+`"}`)
	if other["webchat_id"] == id {
		t.Fatal("two registrations got the same generated id")
	}
	mine := f.register(t, "7", `{"domain":"`+domain+`","webchat_id":"botdistrikt.1","user":{"first_name":"Abhilash","last_name":"Murthy"}}`)
	again := f.register(t, "7", `{"domain":"`+domain+`","webchat_id":"botdistrikt.1"}`)
	if mine["webchat_id"] != "botdistrikt.1" || mine["first_name"] != "Abhilash" || again["id"] != mine["id"] {
		t.Fatalf("given id: %v then %v", mine, again)
	}
	// The names are kept: a registration without them and the message API
	// show them.
	if again["first_name"] != "Abhilash" || again["last_name"] != "Murthy" {
		t.Fatalf("names lost on re-registration: %v", again)
	}
	code, body := f.call("/api/webchat_apps/7/message", "botdistrikt.1", `{"domain":"`+domain+`","message":{"text":"hello"}}`)
	if code != 200 || !strings.Contains(body, `"first_name":"Abhilash","last_name":"Murthy"`) || !strings.Contains(body, `"source":"`+domain+`"`) {
		t.Fatalf("message API user: %d %s", code, body)
	}
	if code, _ := f.call("/api/webchat_apps/7/user", "", `{"domain":"`+domain+`","webchat_id":"w.nul","user":{"first_name":"a\u0000b"}}`); code != 400 {
		t.Fatalf("NUL in first_name: %d", code)
	}
	if f.stack.UserExists(t, webchat.Channel, "w.nul") {
		t.Fatal("a refused registration stored the user")
	}
}

func TestRegisterRefused(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, app, body string
		code            int
		want            string
	}{
		{"domain not among the app's", "7", `{"domain":"https://app.mywebsite.com"}`, 401, authError},
		{"domain of another app", "8", `{"domain":"https://03jd874he983h.mywebsite.com"}`, 401, authError},
		{"no domain", "7", `{}`, 401, authError},
		{"unknown app", "99", `{"domain":"` + domain + `"}`, 404, ""},
		{"webchat_id with spaces", "7", `{"domain":"` + domain + `","webchat_id":"a b"}`, 400, ""},
		{"webchat_id too long", "7", `{"domain":"` + domain + `","webchat_id":"` + strings.Repeat("a", 200) + `"}`, 400, ""},
		{"malformed", "7", `{"domain":`, 400, ""},
		{"unknown field", "7", `{"domain":"` + domain + `","admin":true}`, 400, ""},
		{"oversized", "7", `{"domain":"` + strings.Repeat("a", 40<<10) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.call("/api/webchat_apps/"+tt.app+"/user", "", tt.body)
			if code != tt.code || (tt.want != "" && body != tt.want) {
				t.Fatalf("got %d %s, want %d %s", code, body, tt.code, tt.want)
			}
		})
	}
}

func TestSendMessage(t *testing.T) {
	f := newFixture(t)
	u := f.register(t, "7", `{"domain":"`+domain+`","webchat_id":"webchat.zbqr0d"}`)
	code, body := f.call("/api/webchat_apps/7/message", "webchat.zbqr0d",
		`{"domain":"`+domain+`","user":{"webchat_id":"webchat.zbqr0d"},"message":{"type":"text","text":"what are your opening hours"}}`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var resp struct {
		WebchatResponses []map[string]any `json:"webchat_responses"`
		WebchatQR        []any            `json:"webchat_quickreplies"`
		User             map[string]any   `json:"user"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.WebchatResponses) != 1 || resp.WebchatQR == nil || resp.User["webchat_id"] != "webchat.zbqr0d" {
		t.Fatalf("response %s", body)
	}
	r := resp.WebchatResponses[0]
	want := []string{"_isDeleted", "bot_id", "bot_user_id", "channel", "created_at", "id", "quickreplies_payload", "response_payload", "type", "updated_at"}
	if got := keys(r); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("webchat_response keys %v\nwant %v", got, want)
	}
	if r["response_payload"] != hoursAnswer || r["channel"] != "web" || r["type"] != "text" || r["bot_user_id"] != u["id"] {
		t.Fatalf("webchat_response %v", r)
	}
	// A quick reply tap arrives as payload.
	code, body = f.call("/api/webchat_apps/7/message", "webchat.zbqr0d", `{"domain":"`+domain+`","message":{"type":"quick_reply","text":"Returns","payload":"return policy"}}`)
	if code != 200 || !strings.Contains(body, "thirty days") {
		t.Fatalf("payload: %d %s", code, body)
	}
}

func TestSendMessageRefusedAndDuplicates(t *testing.T) {
	f := newFixture(t)
	f.register(t, "7", `{"domain":"`+domain+`","webchat_id":"webchat.abc"}`)
	ok := `{"domain":"` + domain + `","message":{"text":"hello"}}`
	tests := []struct {
		name, auth, body string
		code             int
	}{
		{"no Authorization", "", ok, 401},
		{"unregistered webchat_id", "webchat.nobody", ok, 401},
		{"wrong domain", "webchat.abc", `{"domain":"https://www.google.com","message":{"text":"hello"}}`, 401},
		{"no message", "webchat.abc", `{"domain":"` + domain + `"}`, 400},
		{"empty text", "webchat.abc", `{"domain":"` + domain + `","message":{"text":" "}}`, 400},
		{"NUL in text", "webchat.abc", `{"domain":"` + domain + `","message":{"text":"a\u0000b"}}`, 400},
		{"text over the cap", "webchat.abc", `{"domain":"` + domain + `","message":{"text":"` + strings.Repeat("x", 5000) + `"}}`, 413},
		{"malformed", "webchat.abc", `{"domain":`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.call("/api/webchat_apps/7/message", tt.auth, tt.body)
			if code != tt.code || (code == 401 && body != authError) {
				t.Fatalf("got %d %s, want %d", code, body, tt.code)
			}
		})
	}
	if f.stack.UserExists(t, webchat.Channel, "webchat.nobody") {
		t.Fatal("unregistered user stored")
	}
	if got := f.stack.Messages(t, webchat.Channel, "webchat.abc"); len(got) != 0 {
		t.Fatalf("refused requests stored %q", got)
	}
	msg := `{"domain":"` + domain + `","message":{"id":"client-42","text":"where is my refund"}}`
	_, first := f.call("/api/webchat_apps/7/message", "webchat.abc", msg)
	_, second := f.call("/api/webchat_apps/7/message", "webchat.abc", msg)
	if !strings.Contains(first, "Refunds reach") || !strings.Contains(second, `"webchat_responses":[]`) {
		t.Fatalf("first %s\nsecond %s", first, second)
	}
	if got := f.stack.Messages(t, webchat.Channel, "webchat.abc"); len(got) != 2 {
		t.Fatalf("transcript %q", got)
	}
}

func TestEventWebhook(t *testing.T) {
	f := newFixture(t)
	f.register(t, "8", `{"domain":"`+domain+`","webchat_id":"webchat.ev1"}`)
	if code, body := f.call("/api/webchat_apps/8/message", "webchat.ev1", `{"domain":"`+domain+`","message":{"text":"where is my refund"}}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	// An agent's and a broadcast's messages to the same user.
	ctx := context.Background()
	u, _ := f.stack.Store.GetUser(ctx, 1, webchat.Channel, "webchat.ev1")
	conv, _ := f.stack.Store.OpenConversation(ctx, 1, u.ID)
	for _, sender := range []string{ivr.AgentSender("Asha"), "broadcast(42)"} {
		m := &ivr.Message{BusinessID: 1, ConversationID: conv.ID, UserID: u.ID, Sender: sender, Text: "Hello from " + sender, Channel: webchat.Channel}
		err := f.stack.Store.AppendMessagesThen(ctx, []*ivr.Message{m}, func(stored []*ivr.Message) ([]*ivr.OutboxItem, error) {
			it, err := outbox.NewReplyItem(outbox.Reply{Connection: f.withHook, BusinessID: 1, Recipient: "webchat.ev1", Message: stored[0], Now: time.Now()})
			return []*ivr.OutboxItem{it}, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.stack.RunOutbox(t)
	got := f.events.WaitAccepted(t, 3, 10*time.Second)
	wantSources := [][2]string{{"bot", "1"}, {"human", "Asha"}, {"broadcast", "42"}}
	for i, req := range got {
		if req.Path != "/events" || req.Header.Get(webchat.HeaderSource) != wantSources[i][0] || req.Header.Get(webchat.HeaderSourceID) != wantSources[i][1] {
			t.Fatalf("event %d: %s %s=%q %s=%q", i, req.Path, webchat.HeaderSource, req.Header.Get(webchat.HeaderSource), webchat.HeaderSourceID, req.Header.Get(webchat.HeaderSourceID))
		}
		if err := webhook.Verify(eventSecret, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), req.Body, time.Now(), time.Minute); err != nil {
			t.Fatalf("event %d signature: %v", i, err)
		}
		var ev webchat.Event
		if err := json.Unmarshal(req.Body, &ev); err != nil || ev.WebchatID != "webchat.ev1" || ev.Message.Channel != "web" {
			t.Fatalf("event %d body %s (%v)", i, req.Body, err)
		}
	}
	var first webchat.Event
	_ = json.Unmarshal(got[0].Body, &first)
	if first.Message.ResponsePayload != "Refunds reach your account within five to seven working days after we receive the returned product." {
		t.Fatalf("bot event payload %v", first.Message.ResponsePayload)
	}
}

func FuzzMessage(f *testing.F) {
	f.Add([]byte(`{"domain":"` + domain + `","message":{"text":"hello"}}`))
	f.Add([]byte(`{"domain":"` + domain + `","message":{"payload":"\u0000"}}`))
	f.Add([]byte(`{"message":null}`))
	fx := newFixture(f)
	if code, _ := fx.call("/api/webchat_apps/7/user", "", `{"domain":"`+domain+`","webchat_id":"webchat.fuzz"}`); code != 200 {
		f.Fatal(code)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/api/webchat_apps/7/message", "/api/webchat_apps/7/user"} {
			if code, resp := fx.call(path, "webchat.fuzz", string(body)); code >= 500 {
				t.Fatalf("%s: status %d for %q: %s", path, code, body, resp)
			}
		}
	})
}
