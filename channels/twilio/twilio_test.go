package twilio_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/channels/twilio"
	"github.com/koelvoice/koel/ivr"
)

const (
	accountSID  = "AC0123456789abcdef0123456789abcdef"
	authToken   = "twilio-auth-token-123"
	publicURL   = "https://koel.example.com"
	hoursAnswer = "Our stores are open from nine in the morning to nine in the evening, Monday to Saturday, and from ten to six on Sunday."
)

type fixture struct {
	stack  *channeltest.Stack
	fake   *channeltest.Platform
	router *mux.Router
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := channeltest.NewStack(t)
	fake := channeltest.NewTwilio(t, accountSID, authToken)
	s.Connect(t, twilio.Channel, "sandbox1", ivr.ConnectionSettings{Twilio: ivr.TwilioSettings{AccountSID: accountSID, AuthToken: authToken}})
	s.Connect(t, twilio.Channel, "rest1", ivr.ConnectionSettings{Twilio: ivr.TwilioSettings{AccountSID: accountSID, AuthToken: authToken,
		ReplyREST: true, From: "whatsapp:+14155238886", APIURL: fake.URL()}})
	r := mux.NewRouter()
	(&twilio.Adapter{Pipeline: s.Pipeline, PublicURL: publicURL}).Routes(r)
	s.Register(twilio.Channel, twilio.NewSender(s.HTTPSender()))
	return &fixture{stack: s, fake: fake, router: r}
}

// specForm is the spec's WhatsApp inbound example (spec/channels.md §2.1).
func specForm(sid, body string) url.Values {
	return url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {accountSID},
		"From": {"whatsapp:+919812345678"}, "To": {"whatsapp:+14155238886"}, "Body": {body},
		"NumMedia": {"0"}, "ProfileName": {"Asha"}, "WaId": {"919812345678"}, "SmsStatus": {"received"},
		"NumSegments": {"1"}, "ApiVersion": {"2010-04-01"}, "MessageType": {"text"},
	}
}

func (f *fixture) post(identifier string, form url.Values, sig string) (int, string) {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if sig != "" {
		h.Set(twilio.HeaderSignature, sig)
	}
	w := channeltest.Serve(f.router, http.MethodPost, "/whatsapp/"+identifier, []byte(form.Encode()), h)
	return w.Code, w.Body.String()
}

func (f *fixture) postSigned(identifier string, form url.Values) (int, string) {
	return f.post(identifier, form, twilio.Signature(authToken, publicURL+"/whatsapp/"+identifier, form))
}

func TestTwiMLReply(t *testing.T) {
	f := newFixture(t)
	code, body := f.postSigned("sandbox1", specForm("SM1234567890abcdef1234567890abcdef", "what are your opening hours"))
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?><Response><Message><Body>` + hoursAnswer + `</Body></Message></Response>`
	if body != want {
		t.Fatalf("TwiML\n got %s\nwant %s", body, want)
	}
	if got := f.stack.Messages(t, twilio.Channel, "whatsapp:+919812345678"); len(got) != 2 || got[0] != "user: what are your opening hours" {
		t.Fatalf("transcript %q", got)
	}
}

func TestDuplicateMessageSidAnsweredOnce(t *testing.T) {
	f := newFixture(t)
	form := specForm("SMdup0000000000000000000000000000", "where is my refund")
	_, first := f.postSigned("sandbox1", form)
	_, second := f.postSigned("sandbox1", form)
	if !strings.Contains(first, "<Message>") || second != `<?xml version="1.0" encoding="UTF-8"?><Response/>` {
		t.Fatalf("first %s\nsecond %s", first, second)
	}
	if got := f.stack.Messages(t, twilio.Channel, "whatsapp:+919812345678"); len(got) != 2 {
		t.Fatalf("transcript %q", got)
	}
}

func TestButtonPayloadAndMediaOnly(t *testing.T) {
	f := newFixture(t)
	form := specForm("SMbtn", "Hours")
	form.Set("ButtonText", "Hours")
	form.Set("ButtonPayload", "what are your opening hours")
	if _, body := f.postSigned("sandbox1", form); !strings.Contains(body, hoursAnswer) {
		t.Fatalf("button tap: %s", body)
	}
	media := specForm("SMmedia", "")
	media.Set("NumMedia", "1")
	media.Set("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME")
	media.Set("MediaContentType0", "image/jpeg")
	media.Set("From", "whatsapp:+910000000001")
	if code, body := f.postSigned("sandbox1", media); code != 200 || !strings.HasSuffix(body, "<Response/>") {
		t.Fatalf("media only: %d %s", code, body)
	}
	if f.stack.UserExists(t, twilio.Channel, "whatsapp:+910000000001") {
		t.Fatal("a media-only message stored a user")
	}
}

func TestRefusedRequestsStoreNothing(t *testing.T) {
	f := newFixture(t)
	form := specForm("SMbad", "hello")
	form.Set("From", "whatsapp:+910000000002")
	tampered := specForm("SMbad", "hello there")
	tampered.Set("From", "whatsapp:+910000000002")
	noSid := specForm("", "hello")
	noSid.Del("SmsMessageSid")
	noSid.Set("From", "whatsapp:+910000000002")
	nul := specForm("SMnul", "a\x00b")
	nul.Set("From", "whatsapp:+910000000002")
	long := specForm("SMlong", strings.Repeat("x", 5000))
	long.Set("From", "whatsapp:+910000000002")
	sign := func(v url.Values) string { return twilio.Signature(authToken, publicURL+"/whatsapp/sandbox1", v) }
	tests := []struct {
		name string
		form url.Values
		sig  string
		code int
	}{
		{"unsigned", form, "", 403},
		{"signed by another token", form, twilio.Signature("other", publicURL+"/whatsapp/sandbox1", form), 403},
		{"signed for another URL", form, twilio.Signature(authToken, publicURL+"/whatsapp/rest1", form), 403},
		{"body changed after signing", tampered, sign(form), 403},
		{"no MessageSid", noSid, sign(noSid), 400},
		{"NUL in Body", nul, sign(nul), 400},
		{"Body over the cap", long, sign(long), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := f.post("sandbox1", tt.form, tt.sig); code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			if f.stack.UserExists(t, twilio.Channel, "whatsapp:+910000000002") {
				t.Fatal("refused request stored a user")
			}
		})
	}
	w := channeltest.Serve(f.router, http.MethodPost, "/whatsapp/sandbox1", []byte(`{"Body":"hi"}`), http.Header{"Content-Type": {"application/json"}})
	if w.Code != 415 {
		t.Fatalf("JSON body: %d", w.Code)
	}
	w = channeltest.Serve(f.router, http.MethodPost, "/whatsapp/sandbox1", []byte(strings.Repeat("a=b&", 20000)), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if w.Code != 413 {
		t.Fatalf("oversized: %d", w.Code)
	}
	if code, _ := f.postSigned("nobody", form); code != 404 {
		t.Fatalf("unknown identifier: %d", code)
	}
}

func TestURLFromForwardedHeaders(t *testing.T) {
	s := channeltest.NewStack(t)
	s.Connect(t, twilio.Channel, "sb", ivr.ConnectionSettings{Twilio: ivr.TwilioSettings{AccountSID: accountSID, AuthToken: authToken}})
	r := mux.NewRouter()
	(&twilio.Adapter{Pipeline: s.Pipeline}).Routes(r)
	form := specForm("SMfwd", "hello")
	// httptest requests have Host example.com.
	sig := twilio.Signature(authToken, "https://example.com:443/whatsapp/sb", form)
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-Proto": {"https"}, twilio.HeaderSignature: {sig}}
	if w := channeltest.Serve(r, http.MethodPost, "/whatsapp/sb", []byte(form.Encode()), h); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func TestRESTReplyThroughMessagesAPI(t *testing.T) {
	f := newFixture(t)
	code, body := f.postSigned("rest1", specForm("SMrest", "what are your opening hours"))
	if code != 200 || body != `<?xml version="1.0" encoding="UTF-8"?><Response/>` {
		t.Fatalf("status %d: %s", code, body)
	}
	f.stack.DeliverDue(t)
	got := f.fake.Accepted()
	if len(got) != 1 {
		t.Fatalf("twilio accepted %d, refused %v", len(got), f.fake.Refused())
	}
	req := got[0]
	u, p, _ := (&http.Request{Header: req.Header}).BasicAuth()
	if req.Path != "/2010-04-01/Accounts/"+accountSID+"/Messages.json" || u != accountSID || p != authToken {
		t.Fatalf("request %s auth %s:%s", req.Path, u, p)
	}
	want := url.Values{"To": {"whatsapp:+919812345678"}, "From": {"whatsapp:+14155238886"}, "Body": {hoursAnswer}}.Encode()
	if string(req.Body) != want {
		t.Fatalf("form\n got %s\nwant %s", req.Body, want)
	}
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte(specForm("SM1", "hello").Encode()))
	f.Add([]byte("MessageSid=SM2&From=whatsapp%3A%2B1&Body=%00"))
	f.Add([]byte("MessageSid=SM3&From=x&NumMedia=abc"))
	f.Add([]byte("%zz"))
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if form, err := url.ParseQuery(string(body)); err == nil {
			h.Set(twilio.HeaderSignature, twilio.Signature(authToken, publicURL+"/whatsapp/sandbox1", form))
		}
		w := channeltest.Serve(fx.router, http.MethodPost, "/whatsapp/sandbox1", body, h)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

func TestGETWebhook(t *testing.T) {
	f := newFixture(t)
	q := specForm("SMget", "what are your opening hours").Encode()
	// GET webhooks sign the URL, query included, and nothing else.
	sig := twilio.Signature(authToken, publicURL+"/whatsapp/sandbox1?"+q, nil)
	w := channeltest.Serve(f.router, http.MethodGet, "/whatsapp/sandbox1?"+q, nil, http.Header{twilio.HeaderSignature: {sig}})
	if w.Code != 200 || !strings.Contains(w.Body.String(), hoursAnswer) {
		t.Fatalf("GET webhook: %d %s", w.Code, w.Body)
	}
	bad := twilio.Signature(authToken, publicURL+"/whatsapp/sandbox1", specForm("SMget2", "hi"))
	w = channeltest.Serve(f.router, http.MethodGet, "/whatsapp/sandbox1?"+specForm("SMget2", "hi").Encode(), nil, http.Header{twilio.HeaderSignature: {bad}})
	if w.Code != 403 {
		t.Fatalf("GET signed like a POST: %d", w.Code)
	}
}

// TestRESTSenderAddress: a REST reply names exactly one sender, the
// connection's Messaging Service when it has one (Twilio then picks the
// sender from the service's pool), else its From address; the fake
// Messages API refuses what Twilio refuses (no sender: 21603, a service SID
// off the MG… pattern: 21705).
func TestRESTSenderAddress(t *testing.T) {
	const svc = "MG0123456789abcdef0123456789abcdef"
	tests := []struct {
		name     string
		settings ivr.TwilioSettings
		// want is the form Twilio receives; nil when the send is refused.
		want url.Values
	}{
		{name: "from", settings: ivr.TwilioSettings{From: "whatsapp:+14155238886"},
			want: url.Values{"To": {"whatsapp:+919812345678"}, "From": {"whatsapp:+14155238886"}, "Body": {hoursAnswer}}},
		{name: "from without the whatsapp prefix", settings: ivr.TwilioSettings{From: "+14155238886"},
			want: url.Values{"To": {"whatsapp:+919812345678"}, "From": {"whatsapp:+14155238886"}, "Body": {hoursAnswer}}},
		{name: "messaging service", settings: ivr.TwilioSettings{MessagingServiceSID: svc},
			want: url.Values{"To": {"whatsapp:+919812345678"}, "MessagingServiceSid": {svc}, "Body": {hoursAnswer}}},
		{name: "messaging service wins over from", settings: ivr.TwilioSettings{MessagingServiceSID: svc, From: "whatsapp:+14155238886"},
			want: url.Values{"To": {"whatsapp:+919812345678"}, "MessagingServiceSid": {svc}, "Body": {hoursAnswer}}},
		{name: "malformed messaging service", settings: ivr.TwilioSettings{MessagingServiceSID: "MG-not-a-sid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := channeltest.NewStack(t)
			fake := channeltest.NewTwilio(t, accountSID, authToken)
			st := tt.settings
			st.AccountSID, st.AuthToken, st.ReplyREST, st.APIURL = accountSID, authToken, true, fake.URL()
			s.Connect(t, twilio.Channel, "svc", ivr.ConnectionSettings{Twilio: st})
			r := mux.NewRouter()
			(&twilio.Adapter{Pipeline: s.Pipeline, PublicURL: publicURL}).Routes(r)
			s.Register(twilio.Channel, twilio.NewSender(s.HTTPSender()))
			f := &fixture{stack: s, fake: fake, router: r}
			if code, body := f.postSigned("svc", specForm("SMsvc", "what are your opening hours")); code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if n := s.DeliverDue(t); n != 1 {
				t.Fatalf("attempted %d deliveries", n)
			}
			accepted, refused := fake.Accepted(), fake.Refused()
			if tt.want == nil {
				if len(accepted) != 0 || len(refused) != 1 {
					t.Fatalf("accepted %d, refused %d; want the one send refused", len(accepted), len(refused))
				}
				if got := refused[0].Form.Get("MessagingServiceSid"); got != tt.settings.MessagingServiceSID || refused[0].Form.Has("From") {
					t.Fatalf("refused form %v", refused[0].Form)
				}
				return
			}
			if len(accepted) != 1 {
				t.Fatalf("accepted %d, refused %v", len(accepted), refused)
			}
			if got := accepted[0].Form; !equalForms(got, tt.want) {
				t.Fatalf("form\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func equalForms(a, b url.Values) bool { return a.Encode() == b.Encode() }

// TestRenderNeedsASender: without From or a Messaging Service there is no
// sender to name, and the reply is not sent.
func TestRenderNeedsASender(t *testing.T) {
	conn := ivr.Connection{Settings: ivr.ConnectionSettings{Twilio: ivr.TwilioSettings{AccountSID: accountSID}}}
	if _, err := twilio.Render(conn, "whatsapp:+919812345678", smf.Message{Text: "hi"}); err == nil || !strings.Contains(err.Error(), "messaging_service_sid") {
		t.Fatalf("Render without a sender: %v", err)
	}
}
