package metawa_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/metawa"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
)

const (
	appSecret   = "test_app_secret"
	token       = "EAAG-system-user-token"
	verifyToken = "wa-verify"
	phoneID     = "106540352242922"
	fallback    = "Sorry, I did not understand that. You can ask about orders, deliveries, returns, payments or store hours."
	refundReply = "Refunds reach your account within five to seven working days after we receive the returned product."
)

// specNotification is the spec's verbatim example (spec/channels.md §3.1).
const specNotification = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
  "messaging_product":"whatsapp",
  "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
  "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
  "messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
               "timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]},
  "field":"messages"}]}]}`

type fixture struct {
	stack  *channeltest.Stack
	graph  *channeltest.Platform
	router *mux.Router
	sender *platform.APISender
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := channeltest.NewStack(t)
	graph := channeltest.NewGraph(t, token, phoneID)
	s.Connect(t, metawa.Channel, "bluebird", ivr.ConnectionSettings{
		MetaWhatsApp: ivr.MetaWhatsAppSettings{AccessToken: token, AppSecret: appSecret, VerifyToken: verifyToken, PhoneNumberID: phoneID, GraphURL: graph.URL()},
	})
	r := mux.NewRouter()
	(&metawa.Adapter{Pipeline: s.Pipeline}).Routes(r)
	snd := metawa.NewSender(s.HTTPSender())
	s.Register(metawa.Channel, snd)
	return &fixture{stack: s, graph: graph, router: r, sender: snd}
}

func (f *fixture) post(body string, sig string) (int, string) {
	h := http.Header{"Content-Type": {"application/json"}}
	if sig != "" {
		h.Set("X-Hub-Signature-256", sig)
	}
	w := channeltest.Serve(f.router, http.MethodPost, "/wa/bluebird", []byte(body), h)
	return w.Code, w.Body.String()
}

func (f *fixture) postSigned(body string) (int, string) {
	return f.post(body, platform.SignMeta(appSecret, []byte(body)))
}

func TestSpecNotificationAnsweredThroughCloudAPI(t *testing.T) {
	f := newFixture(t)
	if code, resp := f.postSigned(specNotification); code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	f.stack.DeliverDue(t)
	got := f.graph.Accepted()
	if len(got) != 1 {
		t.Fatalf("graph accepted %d (refused %d)", len(got), len(f.graph.Refused()))
	}
	req := got[0]
	if req.Path != "/v21.0/"+phoneID+"/messages" || req.Header.Get("Authorization") != "Bearer "+token {
		t.Fatalf("request %s auth %q", req.Path, req.Header.Get("Authorization"))
	}
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text","text":{"body":"` + fallback + `"}}`
	if string(req.Body) != want {
		t.Fatalf("body\n got %s\nwant %s", req.Body, want)
	}
}

func TestVerificationAndSignature(t *testing.T) {
	f := newFixture(t)
	w := channeltest.Serve(f.router, http.MethodGet, "/wa/bluebird?hub.mode=subscribe&hub.challenge=987654&hub.verify_token="+verifyToken, nil, nil)
	if w.Code != 200 || w.Body.String() != "987654" {
		t.Fatalf("verification: %d %q", w.Code, w.Body)
	}
	w = channeltest.Serve(f.router, http.MethodGet, "/wa/bluebird?hub.mode=subscribe&hub.challenge=987654&hub.verify_token=nope", nil, nil)
	if w.Code != 403 {
		t.Fatalf("wrong verify token: %d", w.Code)
	}
	tampered := strings.Replace(specNotification, "another color", "another colour", 1)
	tests := []struct {
		name string
		body string
		sig  string
		code int
	}{
		{"signed", specNotification, platform.SignMeta(appSecret, []byte(specNotification)), 200},
		{"signature of another body", tampered, platform.SignMeta(appSecret, []byte(specNotification)), 403},
		{"another app's secret", specNotification, platform.SignMeta("other", []byte(specNotification)), 403},
		{"no signature", specNotification, "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			if code, resp := fx.post(tt.body, tt.sig); code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, resp)
			}
			if stored := fx.stack.UserExists(t, metawa.Channel, "16505551234"); stored != (tt.code == 200) {
				t.Fatalf("user stored = %v", stored)
			}
		})
	}
}

func notification(phone string, messages ...string) string {
	return `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"` + phone + `"},"messages":[` + strings.Join(messages, ",") + `]}}]}]}`
}

func TestMessageKinds(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		text string // "" = skipped
	}{
		{"text", `{"from":"911","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"where is my refund"}}`, "where is my refund"},
		{"button reply", `{"from":"911","id":"wamid.2","timestamp":"1","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"where is my refund","title":"Refund"}}}`, "where is my refund"},
		{"list reply", `{"from":"911","id":"wamid.3","timestamp":"1","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"where is my refund","title":"Refund","description":"x"}}}`, "where is my refund"},
		{"template button", `{"from":"911","id":"wamid.4","timestamp":"1","type":"button","button":{"payload":"where is my refund","text":"Refund"},"context":{"from":"15550783881","id":"wamid.0"}}`, "where is my refund"},
		{"image with caption", `{"from":"911","id":"wamid.5","timestamp":"1","type":"image","image":{"caption":"where is my refund","mime_type":"image/jpeg","id":"9"}}`, "where is my refund"},
		{"image without caption", `{"from":"911","id":"wamid.6","timestamp":"1","type":"image","image":{"mime_type":"image/jpeg","id":"9"}}`, ""},
		{"sticker", `{"from":"911","id":"wamid.7","timestamp":"1","type":"sticker","sticker":{"id":"9"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := metawa.Parse([]byte(notification(phoneID, tt.msg)), phoneID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.text == "" {
				if len(msgs) != 0 {
					t.Fatalf("parsed %+v, want nothing", msgs)
				}
				return
			}
			if len(msgs) != 1 || msgs[0].Text != tt.text || msgs[0].From != "911" || msgs[0].To != phoneID {
				t.Fatalf("parsed %+v", msgs)
			}
		})
	}
	other, _ := metawa.Parse([]byte(notification("999", tests[0].msg)), phoneID)
	statuses, _ := metawa.Parse([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"`+phoneID+`"},"statuses":[{"id":"wamid.9","status":"delivered","timestamp":"1","recipient_id":"911"}]}}]}]}`), phoneID)
	if len(other) != 0 || len(statuses) != 0 {
		t.Fatalf("another number %v, statuses %v: want nothing", other, statuses)
	}
}

func TestDuplicatesAndBadInput(t *testing.T) {
	f := newFixture(t)
	body := notification(phoneID, `{"from":"912","id":"wamid.dup","timestamp":"1","type":"text","text":{"body":"where is my refund"}}`)
	for i := 0; i < 3; i++ {
		if code, resp := f.postSigned(body); code != 200 {
			t.Fatalf("status %d: %s", code, resp)
		}
	}
	f.stack.DeliverDue(t)
	f.stack.DeliverDue(t)
	got := f.graph.Accepted()
	if len(got) != 1 || !strings.Contains(string(got[0].Body), refundReply) {
		t.Fatalf("accepted %d: %v", len(got), got)
	}
	for _, tt := range []struct {
		body string
		code int
	}{
		{`{"object":"page","entry":[]}`, 400},
		{`{"object":`, 400},
		{notification(phoneID, `{"from":"913","id":"x","type":"text","text":{"body":"a\u0000b"}}`), 400},
		{notification(phoneID, `{"from":"913","id":"x","type":"text","text":{"body":"`+strings.Repeat("x", 5000)+`"}}`), 413},
	} {
		if code, resp := f.postSigned(tt.body); code != tt.code {
			t.Fatalf("%.60s: status %d, want %d: %s", tt.body, code, tt.code, resp)
		}
	}
	if f.stack.UserExists(t, metawa.Channel, "913") {
		t.Fatal("refused request stored a user")
	}
}

func TestRenderInteractiveAndLimits(t *testing.T) {
	conn := ivr.Connection{Settings: ivr.ConnectionSettings{MetaWhatsApp: ivr.MetaWhatsAppSettings{PhoneNumberID: phoneID}}}
	req, err := metawa.Render(conn, "911", smf.Message{Text: "What would you like to do?", QuickReplies: []smf.QuickReply{
		{Title: "Track my order please", Payload: "track my order"}, {Title: "Returns", Payload: "return policy"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"911","type":"interactive","interactive":{"type":"button","body":{"text":"What would you like to do?"},"action":{"buttons":[{"type":"reply","reply":{"id":"track my order","title":"Track my order plea…"}},{"type":"reply","reply":{"id":"return policy","title":"Returns"}}]}}}`
	if string(req.Body) != want || req.Path != "/"+phoneID+"/messages" {
		t.Fatalf("render\n got %s %s\nwant %s", req.Path, req.Body, want)
	}
	var qr []smf.QuickReply
	for _, s := range []string{"a", "b", "c", "d"} {
		qr = append(qr, smf.QuickReply{Title: s, Payload: s})
	}
	req, _ = metawa.Render(conn, "911", smf.Message{Text: "Pick", QuickReplies: qr})
	var s channeltest.CloudSend
	if err := json.Unmarshal(req.Body, &s); err != nil || s.Type != "text" || s.Text.Body != "Pick\n\n1. a\n2. b\n3. c\n4. d" {
		t.Fatalf("four choices: %s (%v)", req.Body, err)
	}
	if _, err := metawa.Render(ivr.Connection{}, "911", smf.Message{Text: "x"}); err == nil {
		t.Fatal("render without a phone_number_id succeeded")
	}
}

func TestRateLimitCodeRetried(t *testing.T) {
	f := newFixture(t)
	f.graph.FailNext(channeltest.Failure{Status: 400, Body: `{"error":{"message":"Rate limit hit","type":"OAuthException","code":130429}}`})
	if code, _ := f.postSigned(notification(phoneID, `{"from":"914","id":"wamid.r","timestamp":"1","type":"text","text":{"body":"where is my refund"}}`)); code != 200 {
		t.Fatal(code)
	}
	f.stack.RunOutbox(t)
	f.graph.WaitAccepted(t, 1, 10*time.Second)
	if v := channeltest.CounterValue(t, f.stack.Registry, "koel_channel_delivery_failures_total", map[string]string{"channel": "wa", "class": "rate_limited"}); v != 1 {
		t.Fatalf("rate_limited failures = %v", v)
	}
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte(specNotification))
	f.Add([]byte(notification(phoneID, `{"from":"1","id":"2","type":"interactive","interactive":{"button_reply":{"id":"x"}}}`)))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":null}]}]}`))
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := channeltest.Serve(fx.router, http.MethodPost, "/wa/bluebird", body, http.Header{"X-Hub-Signature-256": {platform.SignMeta(appSecret, body)}})
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
