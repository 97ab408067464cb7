package infobip_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/infobip"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

const (
	apiKey      = "infobip-api-key-1"
	inboundKey  = "infobip-forwarding-secret"
	refundReply = "Refunds reach your account within five to seven working days after we receive the returned product."
)

// specInbound is the spec's verbatim example (spec/channels.md §3.2) with
// the text changed to a question the demo FAQ answers.
const specInbound = `{"results":[{"from":"385919998888","to":"1234","integrationType":"WHATSAPP",
  "receivedAt":"2019-07-19T11:23:26.998+0000","messageId":"ABEGOFl3VCQoAhBalbc6rTQT6mgS29EmGZ7a",
  "pairedMessageId":null,"callbackData":null,"message":{"type":"TEXT","text":"where is my refund"},
  "contact":{"name":"Frank"},"price":{"pricePerMessage":0,"currency":"EUR"}}],
 "messageCount":1,"pendingMessageCount":0}`

type fixture struct {
	stack  *channeltest.Stack
	fake   *channeltest.Platform
	router *mux.Router
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := channeltest.NewStack(t)
	fake := channeltest.NewInfobip(t, apiKey)
	s.Connect(t, infobip.Channel, "ib1", ivr.ConnectionSettings{Infobip: ivr.InfobipSettings{APIKey: apiKey, InboundToken: inboundKey,
		BaseURL: fake.URL(), Sender: "447860099299"}})
	s.Connect(t, infobip.Channel, "open", ivr.ConnectionSettings{Infobip: ivr.InfobipSettings{APIKey: apiKey, BaseURL: fake.URL(), Sender: "1"}})
	r := mux.NewRouter()
	(&infobip.Adapter{Pipeline: s.Pipeline}).Routes(r)
	s.Register(infobip.Channel, infobip.NewSender(s.HTTPSender()))
	return &fixture{stack: s, fake: fake, router: r}
}

func (f *fixture) post(identifier, auth, body string) (int, string) {
	h := http.Header{"Content-Type": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	w := channeltest.Serve(f.router, http.MethodPost, "/infobip/"+identifier, []byte(body), h)
	return w.Code, w.Body.String()
}

func TestInboundAnsweredThroughSendAPI(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 2; i++ { // the second delivery is a duplicate
		if code, resp := f.post("ib1", "App "+inboundKey, specInbound); code != 200 {
			t.Fatalf("status %d: %s", code, resp)
		}
	}
	f.stack.DeliverDue(t)
	f.stack.DeliverDue(t)
	got := f.fake.Accepted()
	if len(got) != 1 {
		t.Fatalf("infobip accepted %d, refused %d", len(got), len(f.fake.Refused()))
	}
	if got[0].Path != "/whatsapp/1/message/text" || got[0].Header.Get("Authorization") != "App "+apiKey {
		t.Fatalf("request %s auth %q", got[0].Path, got[0].Header.Get("Authorization"))
	}
	want := `{"from":"447860099299","to":"385919998888","content":{"text":"` + refundReply + `"}}`
	if string(got[0].Body) != want {
		t.Fatalf("body\n got %s\nwant %s", got[0].Body, want)
	}
}

func TestMessageTypes(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		{`{"type":"TEXT","text":"hi"}`, "hi"},
		{`{"type":"BUTTON","text":"Refund","payload":"where is my refund"}`, "where is my refund"},
		{`{"type":"INTERACTIVE_BUTTON_REPLY","id":"where is my refund","title":"Refund"}`, "where is my refund"},
		{`{"type":"INTERACTIVE_LIST_REPLY","id":"","title":"Refund"}`, "Refund"},
		{`{"type":"IMAGE","url":"https://x","caption":"is this covered"}`, "is this covered"},
		{`{"type":"LOCATION","longitude":1,"latitude":2}`, ""},
	}
	for _, tt := range tests {
		msgs, err := infobip.Parse([]byte(`{"results":[{"from":"1","to":"2","messageId":"m","message":` + tt.msg + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if (tt.want == "") != (len(msgs) == 0) || (len(msgs) == 1 && msgs[0].Text != tt.want) {
			t.Fatalf("%s: parsed %+v, want %q", tt.msg, msgs, tt.want)
		}
	}
}

func TestRefusedRequestsStoreNothing(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, identifier, auth, body string
		code                         int
	}{
		{"no authorization", "ib1", "", specInbound, 401},
		{"wrong secret", "ib1", "App not-the-secret", specInbound, 401},
		{"connection without an inbound secret", "open", "App ", specInbound, 401},
		{"unknown identifier", "nobody", "App " + inboundKey, specInbound, 404},
		{"not JSON", "ib1", "App " + inboundKey, `{"results":[`, 400},
		{"no results", "ib1", "App " + inboundKey, `{"messageCount":0}`, 400},
		{"result without messageId", "ib1", "App " + inboundKey, `{"results":[{"from":"385919998888","message":{"type":"TEXT","text":"hi"}}]}`, 400},
		{"NUL in text", "ib1", "App " + inboundKey, strings.Replace(specInbound, "where is my refund", `a\u0000b`, 1), 400},
		{"body over the cap", "ib1", "App " + inboundKey, strings.Replace(specInbound, "where is my refund", strings.Repeat("x", 300<<10), 1), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, resp := f.post(tt.identifier, tt.auth, tt.body); code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, resp)
			}
			if f.stack.UserExists(t, infobip.Channel, "385919998888") {
				t.Fatal("refused request stored a user")
			}
		})
	}
	if code, _ := f.post("ib1", "Bearer "+inboundKey, specInbound); code != 200 {
		t.Fatalf("bearer form of the secret: %d", code)
	}
}

func TestThrottledSendRetried(t *testing.T) {
	f := newFixture(t)
	f.fake.FailNext(channeltest.InfobipTooManyRequests)
	if code, _ := f.post("ib1", inboundKey, specInbound); code != 200 {
		t.Fatal(code)
	}
	start := time.Now()
	f.stack.RunOutbox(t)
	f.fake.WaitAccepted(t, 1, 10*time.Second)
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %v, before the 1 s Retry-After", waited)
	}
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte(specInbound))
	f.Add([]byte(`{"results":[{"from":"1","messageId":"x","message":{"type":"BUTTON"}}]}`))
	f.Add([]byte(`{"results":null}`))
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := channeltest.Serve(fx.router, http.MethodPost, "/infobip/ib1", body, http.Header{"Authorization": {"App " + inboundKey}})
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

func TestQuickRepliesSentAsReplyButtons(t *testing.T) {
	f := newFixture(t)
	conn, err := f.stack.Store.GetConnection(context.Background(), infobip.Channel, "ib1")
	if err != nil {
		t.Fatal(err)
	}
	snd := infobip.NewSender(f.stack.HTTPSender())
	for _, tt := range []struct {
		qr   []string
		path string
		want string
	}{
		{[]string{"Track my order please", "Returns"}, infobip.SendButtonsPath,
			`{"from":"447860099299","to":"385919998888","content":{"body":{"text":"What would you like to do?"},"action":{"buttons":[{"type":"REPLY","id":"Track my order please","title":"Track my order plea…"},{"type":"REPLY","id":"Returns","title":"Returns"}]}}}`},
		{[]string{"a", "b", "c", "d"}, infobip.SendPath,
			`{"from":"447860099299","to":"385919998888","content":{"text":"What would you like to do?\n\n1. a\n2. b\n3. c\n4. d"}}`},
	} {
		it, err := outbox.NewReplyItem(outbox.Reply{Connection: conn, BusinessID: 1, Recipient: "385919998888",
			Message: &ivr.Message{ID: int64(len(tt.qr)), Text: "What would you like to do?", QuickReplies: tt.qr}, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		before := len(f.fake.Accepted())
		if err := snd.Send(context.Background(), conn, *it); err != nil {
			t.Fatalf("send: %v (refused %d)", err, len(f.fake.Refused()))
		}
		got := f.fake.Accepted()[before]
		if got.Path != tt.path || string(got.Body) != tt.want {
			t.Fatalf("sent %s %s\nwant %s %s", got.Path, got.Body, tt.path, tt.want)
		}
	}
}
