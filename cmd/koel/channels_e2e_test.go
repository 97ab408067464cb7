package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/twilio"
	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

const (
	e2ePageToken  = "e2e-page-token"
	e2eAppSecret  = "e2e-app-secret"
	e2eTwilioSID  = "AC00000000000000000000000000000e2e"
	e2eTwilioAuth = "e2e-twilio-auth-token"
	e2eInfobipKey = "e2e-infobip-key"
	e2eInfobipIn  = "e2e-infobip-inbound"
	e2eGupshupKey = "e2e-gupshup-key"
	e2eDomain     = "https://e2e-7h3kq9.app.link"
	e2ePhoneID    = "106540352242922"
	e2eKarixKey   = "e2e-karix-key"
	e2eJioToken   = "e2e-jio-token"
)

// textPlatforms are the fake platforms of one server.
type textPlatforms struct {
	srv     *Server
	graph   *channeltest.Platform
	infobip *channeltest.Platform
	gupshup *channeltest.Platform
	karix   *channeltest.Platform
	jio     *channeltest.Platform
	webhook *receiver
}

func startTextServer(t *testing.T, dbURL string) *textPlatforms {
	t.Helper()
	rc, hook := newReceiver(t, 0)
	p := &textPlatforms{
		webhook: rc,
		graph:   channeltest.NewGraph(t, e2ePageToken, e2ePhoneID),
		karix:   channeltest.NewKarix(t, e2eKarixKey),
		jio:     channeltest.NewJio(t, e2eJioToken),
		infobip: channeltest.NewInfobip(t, e2eInfobipKey),
		gupshup: channeltest.NewGupshup(t, e2eGupshupKey),
	}
	p.srv = startServer(t, testConfig(t, t.TempDir(), dbURL, hook.URL))
	for _, c := range []ivr.Connection{
		{Channel: ivr.ChannelFacebook, Settings: ivr.ConnectionSettings{Messenger: ivr.MessengerSettings{
			PageAccessToken: e2ePageToken, AppSecret: e2eAppSecret, VerifyToken: "v", GraphURL: p.graph.URL()}}},
		{Channel: ivr.ChannelWhatsApp, Settings: ivr.ConnectionSettings{Twilio: ivr.TwilioSettings{AccountSID: e2eTwilioSID, AuthToken: e2eTwilioAuth}}},
		{Channel: "infobip", Settings: ivr.ConnectionSettings{Infobip: ivr.InfobipSettings{
			APIKey: e2eInfobipKey, InboundToken: e2eInfobipIn, BaseURL: p.infobip.URL(), Sender: "447860099299"}}},
		{Channel: "gupshup", Settings: ivr.ConnectionSettings{Gupshup: ivr.GupshupSettings{
			APIKey: e2eGupshupKey, Source: "919800000003", AppName: "Bluebird", BaseURL: p.gupshup.URL()}}},
		{Channel: ivr.ChannelWebchat, Settings: ivr.ConnectionSettings{Webchat: ivr.WebchatSettings{CustomDomains: []string{e2eDomain}}}},
		{Channel: "wa", Settings: ivr.ConnectionSettings{MetaWhatsApp: ivr.MetaWhatsAppSettings{
			PhoneNumberID: e2ePhoneID, AccessToken: e2ePageToken, AppSecret: e2eAppSecret, VerifyToken: "v", GraphURL: p.graph.URL()}}},
		{Channel: "karix", Settings: ivr.ConnectionSettings{Karix: ivr.KarixSettings{APIKey: e2eKarixKey, Sender: "+918000000000", BaseURL: p.karix.URL()}}},
		{Channel: ivr.ChannelJio, Settings: ivr.ConnectionSettings{Jio: ivr.JioSettings{AccessToken: e2eJioToken, AppSecret: "jio-secret", BaseURL: p.jio.URL()}}},
	} {
		c.BusinessID, c.Identifier, c.Active = demo.BusinessID, "bluebird", true
		if c.Channel == ivr.ChannelWebchat {
			c.Identifier = "7"
		}
		if err := p.srv.store.CreateConnection(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func post(t *testing.T, u string, header http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// askEverywhere asks question as one person on every text channel and
// returns each channel's answer.
func (p *textPlatforms) askEverywhere(t *testing.T, n int, question string) map[string]string {
	t.Helper()
	base := p.srv.URL()
	answers := map[string]string{}
	phone := fmt.Sprintf("9198%08d", n)

	// Webhook API.
	if code, body := postJSON(t, base+webhook.PathLogMessage, webhookHeaders, logMessage("asha-"+phone, question)); code != 200 {
		t.Fatalf("webhook API: %d %s", code, body)
	}
	answers["webhook"] = waitFor(t, p.webhook.got, "the webhook delivery").Message.Body.Text

	// Messenger.
	q, _ := json.Marshal(question)
	fb := fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE","time":1,"messaging":[{"sender":{"id":"PSID%d"},"recipient":{"id":"PAGE"},"timestamp":1,"message":{"mid":"mid.e2e.%d","text":%s}}]}]}`, n, n, q)
	h := http.Header{"Content-Type": {"application/json"}, "X-Hub-Signature-256": {platform.SignMeta(e2eAppSecret, []byte(fb))}}
	if code, body := post(t, base+"/fb/bluebird", h, fb); code != 200 {
		t.Fatalf("messenger: %d %s", code, body)
	}
	got := p.graph.WaitAccepted(t, 2*n-1, 20*time.Second)
	var send channeltest.MessengerSend
	if err := got[2*n-2].JSON(&send); err != nil || send.Recipient.ID != fmt.Sprintf("PSID%d", n) {
		t.Fatalf("messenger send %s: %v", got[2*n-2].Body, err)
	}
	answers["messenger"] = send.Message.Text

	// WhatsApp Cloud API.
	wa := fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":%q},"contacts":[{"profile":{"name":"Asha"},"wa_id":%q}],"messages":[{"from":%q,"id":"wamid.e2e.%d","timestamp":"1749416383","type":"text","text":{"body":%s}}]}}]}]}`, e2ePhoneID, phone, phone, n, q)
	h = http.Header{"Content-Type": {"application/json"}, "X-Hub-Signature-256": {platform.SignMeta(e2eAppSecret, []byte(wa))}}
	if code, body := post(t, base+"/wa/bluebird", h, wa); code != 200 {
		t.Fatalf("cloud api: %d %s", code, body)
	}
	got = p.graph.WaitAccepted(t, 2*n, 20*time.Second)
	var cloud channeltest.CloudSend
	if err := got[2*n-1].JSON(&cloud); err != nil || cloud.To != phone || cloud.Text == nil {
		t.Fatalf("cloud send %s: %v", got[2*n-1].Body, err)
	}
	answers["cloud api"] = cloud.Text.Body

	// Twilio WhatsApp: TwiML in the response.
	form := url.Values{"MessageSid": {fmt.Sprintf("SM%032d", n)}, "AccountSid": {e2eTwilioSID}, "From": {"whatsapp:+" + phone},
		"To": {"whatsapp:+14155238886"}, "Body": {question}, "NumMedia": {"0"}, "ProfileName": {"Asha"}, "WaId": {phone}}
	sig := twilio.Signature(e2eTwilioAuth, base+"/whatsapp/bluebird", form)
	h = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, twilio.HeaderSignature: {sig}}
	code, body := post(t, base+"/whatsapp/bluebird", h, form.Encode())
	var twiml struct {
		Messages []string `xml:"Message>Body"`
	}
	if code != 200 || xml.Unmarshal([]byte(body), &twiml) != nil || len(twiml.Messages) == 0 {
		t.Fatalf("twilio: %d %s", code, body)
	}
	answers["twilio"] = strings.Join(twiml.Messages, "\n")

	// Infobip.
	ib := fmt.Sprintf(`{"results":[{"from":%q,"to":"447860099299","integrationType":"WHATSAPP","receivedAt":"2026-12-02T10:00:00.000+0000","messageId":"ib-e2e-%d","message":{"type":"TEXT","text":%s},"contact":{"name":"Asha"}}],"messageCount":1,"pendingMessageCount":0}`, phone, n, q)
	h = http.Header{"Content-Type": {"application/json"}, "Authorization": {"App " + e2eInfobipIn}}
	if code, body := post(t, base+"/infobip/bluebird", h, ib); code != 200 {
		t.Fatalf("infobip: %d %s", code, body)
	}
	var ibSend channeltest.InfobipSend
	if err := p.infobip.WaitAccepted(t, n, 20*time.Second)[n-1].JSON(&ibSend); err != nil || ibSend.To != phone {
		t.Fatalf("infobip send: %+v %v", ibSend, err)
	}
	answers["infobip"] = ibSend.Content.Text

	// Gupshup (the seed's enterprise shape).
	gs := fmt.Sprintf(`{"waNumber":"919800000003","mobile":%q,"name":"Asha","type":"text","text":%s,"timestamp":"%d"}`, phone, q, 1687160320000+n)
	if code, body := post(t, base+"/gupshup/bluebird", http.Header{"Content-Type": {"application/json"}}, gs); code != 200 {
		t.Fatalf("gupshup: %d %s", code, body)
	}
	gsReq := p.gupshup.WaitAccepted(t, n, 20*time.Second)[n-1]
	var gsMsg struct{ Text string }
	if gsReq.Form.Get("destination") != phone || json.Unmarshal([]byte(gsReq.Form.Get("message")), &gsMsg) != nil {
		t.Fatalf("gupshup send %v", gsReq.Form)
	}
	answers["gupshup"] = gsMsg.Text

	// Other-channels API.
	h = http.Header{"Content-Type": {"application/json"}}
	wid := "webchat.e2e" + phone
	if code, body := post(t, base+"/api/webchat_apps/7/user", h, `{"domain":"`+e2eDomain+`","webchat_id":"`+wid+`"}`); code != 200 {
		t.Fatalf("webchat user: %d %s", code, body)
	}
	h.Set("Authorization", wid)
	code, body = post(t, base+"/api/webchat_apps/7/message", h, `{"domain":"`+e2eDomain+`","message":{"text":`+string(q)+`}}`)
	var wc struct {
		Responses []struct {
			Payload string `json:"response_payload"`
		} `json:"webchat_responses"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &wc) != nil || len(wc.Responses) == 0 {
		t.Fatalf("webchat message: %d %s", code, body)
	}
	var parts []string
	for _, r := range wc.Responses {
		parts = append(parts, r.Payload)
	}
	answers["webchat"] = strings.Join(parts, "\n")

	// Karix.
	kx := fmt.Sprintf(`{"uid":"kx-e2e-%d","channel":"whatsapp","direction":"inbound","source":"+%s","destination":"+918000000000","content_type":"text","content":{"text":%s}}`, n, phone, q)
	if code, body := post(t, base+"/karix/bluebird", http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + e2eKarixKey}}, kx); code != 200 {
		t.Fatalf("karix: %d %s", code, body)
	}
	var kxSend channeltest.KarixSend
	if err := p.karix.WaitAccepted(t, n, 20*time.Second)[n-1].JSON(&kxSend); err != nil || kxSend.Destination[0] != "+"+phone {
		t.Fatalf("karix send %+v: %v", kxSend, err)
	}
	answers["karix"] = kxSend.Content.Text

	// Jio.
	jio := fmt.Sprintf(`{"ToUsername":"bot","FromUserName":"openid-%s","CreateTime":1518774424438,"MsgType":"text","MsgId":"jio-e2e-%d","Content":%s}`, phone, n, q)
	if code, body := post(t, base+"/jio/bluebird", http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + e2eJioToken}}, jio); code != 200 {
		t.Fatalf("jio: %d %s", code, body)
	}
	var jioSend channeltest.JioSend
	if err := p.jio.WaitAccepted(t, n, 20*time.Second)[n-1].JSON(&jioSend); err != nil || jioSend.ToUser != "openid-"+phone {
		t.Fatalf("jio send %+v: %v", jioSend, err)
	}
	answers["jio"] = jioSend.Text.Content
	return answers
}

// TestSameAnswerOnEveryTextChannel: one person asks the same questions over
// the webhook API, Messenger, Twilio WhatsApp, Infobip, Gupshup, the
// other-channels API, the WhatsApp Cloud API, Karix and Jio, against the real engine, store and FAQ bot with the
// demo FAQ; every channel gets the FAQ's answer.
func testSameAnswerOnEveryTextChannel(t *testing.T, dbURL string) {
	p := startTextServer(t, dbURL)
	questions := []struct{ q, want string }{
		{"what are your opening hours", "Our stores are open from nine in the morning to nine in the evening, Monday to Saturday, and from ten to six on Sunday."},
		{"where is my refund", "Refunds reach your account within five to seven working days after we receive the returned product."},
		{"How do I return an item?", "You can return most products within thirty days of delivery. Start a return from My Orders and we will arrange a pickup."},
	}
	for i, tt := range questions {
		answers := p.askEverywhere(t, i+1, tt.q)
		if len(answers) != 9 {
			t.Fatalf("answers from %d channels", len(answers))
		}
		for ch, a := range answers {
			if a != tt.want {
				t.Errorf("%q on %s: got %q, want %q", tt.q, ch, a, tt.want)
			}
		}
	}
	// The webhook channel is counted like the platforms: one inbound
	// message and one accepted delivery per question.
	// The last delivery is counted when the receiver's answer is back,
	// after the receiver saw it: poll for it.
	for _, dir := range []string{"inbound", "outbound"} {
		count := func() float64 {
			return metricValue(t, p.srv.URL(), "koel_channel_messages_total", `channel="webhook"`, `direction="`+dir+`"`)
		}
		for deadline := time.Now().Add(10 * time.Second); count() < float64(len(questions)) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if v := count(); v != float64(len(questions)) {
			t.Errorf("koel_channel_messages_total{channel=\"webhook\",direction=%q} = %v, want %d", dir, v, len(questions))
		}
	}
}

func TestSameAnswerOnEveryTextChannelSQLite(t *testing.T) { testSameAnswerOnEveryTextChannel(t, "") }

func TestSameAnswerOnEveryTextChannelPostgres(t *testing.T) {
	testSameAnswerOnEveryTextChannel(t, storetest.PostgresURL(t))
}

// metricValue scrapes /metrics and sums the samples of name whose labels
// include every label given.
func metricValue(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	var sum float64
	for _, m := range line.FindAllStringSubmatch(string(text), -1) {
		ok := true
		for _, l := range labels {
			if !strings.Contains(m[1], l) {
				ok = false
			}
		}
		if ok {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

// TestSendAPIFailuresRetriedUntilDelivered: Graph answers 429 with
// Retry-After, then 500 three times, then Graph's own rate-limit error;
// every reply is still delivered exactly once, and /metrics shows the
// retries by class.
func TestSendAPIFailuresRetriedUntilDelivered(t *testing.T) { testSendAPIFailures(t, "") }

func TestSendAPIFailuresRetriedUntilDeliveredPostgres(t *testing.T) {
	testSendAPIFailures(t, storetest.PostgresURL(t))
}

func testSendAPIFailures(t *testing.T, dbURL string) {
	p := startTextServer(t, dbURL)
	p.graph.FailNext(
		channeltest.Failure{Status: 429, RetryAfter: "1", Body: `{"error":{"message":"Too many calls","type":"OAuthException","code":32}}`},
		channeltest.Failure{Status: 500, Body: `{"error":{"message":"An unexpected error has occurred.","type":"OAuthException","code":1}}`},
		channeltest.Failure{Status: 500},
		channeltest.Failure{Status: 502},
		channeltest.GraphRateLimited,
	)
	questions := []string{"what are your opening hours", "where is my refund", "how do i cancel an order", "do you accept upi", "i forgot my password"}
	start := time.Now()
	for i, q := range questions {
		qb, _ := json.Marshal(q)
		fb := fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE","time":1,"messaging":[{"sender":{"id":"U%d"},"recipient":{"id":"PAGE"},"timestamp":1,"message":{"mid":"mid.fail.%d","text":%s}}]}]}`, i, i, qb)
		h := http.Header{"Content-Type": {"application/json"}, "X-Hub-Signature-256": {platform.SignMeta(e2eAppSecret, []byte(fb))}}
		for try := 0; try < 2; try++ { // Meta redelivers; answered once
			if code, body := post(t, p.srv.URL()+"/fb/bluebird", h, fb); code != 200 {
				t.Fatalf("%d %s", code, body)
			}
		}
	}
	got := p.graph.WaitAccepted(t, len(questions), 30*time.Second)
	if time.Since(start) < time.Second {
		t.Fatalf("delivered in %v: the 1 s Retry-After was not honoured", time.Since(start))
	}
	// Exactly once: wait for the outbox to drain, then count.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && metricValue(t, p.srv.URL(), "koel_outbox_attempts_total", `result="delivered"`) < float64(len(questions)) {
		time.Sleep(10 * time.Millisecond)
	}
	got = p.graph.Accepted()
	keys := map[string]int{}
	for _, r := range got {
		keys[r.Header.Get("Idempotency-Key")]++
	}
	if len(got) != len(questions) || len(keys) != len(questions) {
		t.Fatalf("graph accepted %d requests under %d keys, want %d each once: %v", len(got), len(keys), len(questions), keys)
	}
	if p.graph.Attempts() != len(questions)+5 {
		t.Fatalf("graph saw %d attempts, want %d", p.graph.Attempts(), len(questions)+5)
	}
	base := p.srv.URL()
	if v := metricValue(t, base, "koel_channel_delivery_failures_total", `channel="fb"`, `class="rate_limited"`); v != 2 {
		t.Errorf("rate_limited failures = %v, want 2", v)
	}
	if v := metricValue(t, base, "koel_channel_delivery_failures_total", `channel="fb"`, `class="server"`); v != 3 {
		t.Errorf("server failures = %v, want 3", v)
	}
	if v := metricValue(t, base, "koel_outbox_attempts_total", `result="retry"`); v != 5 {
		t.Errorf("outbox retries = %v, want 5", v)
	}
	if v := metricValue(t, base, "koel_channel_messages_total", `channel="fb"`, `direction="outbound"`); v != 5 {
		t.Errorf("outbound fb messages = %v, want 5", v)
	}
	if v := metricValue(t, base, "koel_channel_messages_total", `channel="fb"`, `direction="inbound"`); v != 5 {
		t.Errorf("inbound fb messages = %v, want 5 (duplicates not counted)", v)
	}
	if v := metricValue(t, base, "koel_channel_delivery_seconds_count", `channel="fb"`); v != 5 {
		t.Errorf("delivery latency samples = %v, want 5", v)
	}
	// With samples in every channel metric, they pass Prometheus's linter.
	problems, err := testutil.GatherAndLint(p.srv.registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Errorf("metric %s: %s", pr.Metric, pr.Text)
	}
}

// TestKooKooAtTheSeedsFBPath: the seed's KooKoo setup says to enter
// <domain>/fb/<identifier> as the application URL; KooKoo's events there
// reach the KooKoo app, while Meta's requests on the same path stay
// Messenger's.
func TestKooKooAtTheSeedsFBPath(t *testing.T) {
	p := startTextServer(t, "")
	resp, err := http.Get(p.srv.URL() + "/fb/demo?event=NewCall&sid=fbpath1&cid=09990001111&called_number=08012345678")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<response") {
		t.Fatalf("KooKoo NewCall at /fb/demo: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(p.srv.URL() + "/fb/bluebird?hub.mode=subscribe&hub.challenge=42&hub.verify_token=v")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "42" {
		t.Fatalf("Meta verification at /fb/bluebird: %d %s", resp.StatusCode, body)
	}
}
