package messenger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/messenger"
	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
)

const (
	appSecret   = "test_app_secret"
	pageToken   = "EAAB-page-token"
	verifyToken = "meatyhamhock"
	hoursAnswer = "Our stores are open from nine in the morning to nine in the evening, Monday to Saturday, and from ten to six on Sunday."
)

// The spec's vector (spec/channels.md §1.3).
const specBody = `{"object":"page","entry":[{"id":"PAGE_ID","time":1458692752478,"messaging":[{"sender":{"id":"USER_PSID"},"recipient":{"id":"PAGE_ID"},"timestamp":1458692752478,"message":{"mid":"mid.1457764197618:41d102a3e1ae206a38","text":"hello, world!"}}]}]}`

func TestSignatureVectors(t *testing.T) {
	if len(specBody) != 244 {
		t.Fatalf("spec body is %d bytes, want 244", len(specBody))
	}
	if got := platform.SignMeta(appSecret, []byte(specBody)); got != "sha256=71faf239f0f86b907318c0729704f0b2c372f3a00220fc39ad26845aac9cc056" {
		t.Fatalf("SignMeta = %s", got)
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   string
		ok     bool
	}{
		{"sha256 vector", appSecret, h("X-Hub-Signature-256", "sha256=71faf239f0f86b907318c0729704f0b2c372f3a00220fc39ad26845aac9cc056"), specBody, true},
		{"sha256 upper-case hex", appSecret, h("X-Hub-Signature-256", "sha256=71FAF239F0F86B907318C0729704F0B2C372F3A00220FC39AD26845AAC9CC056"), specBody, true},
		{"sha1 legacy vector", appSecret, h("X-Hub-Signature", "sha1=3ab0615402b7320912e34a7d67c80c6a041a50d7"), specBody, true},
		{"sha256 preferred over a wrong sha1", appSecret, h("X-Hub-Signature-256", "sha256=71faf239f0f86b907318c0729704f0b2c372f3a00220fc39ad26845aac9cc056", "X-Hub-Signature", "sha1=00"), specBody, true},
		{"wrong sha256 not rescued by a right sha1", appSecret, h("X-Hub-Signature-256", "sha256=00", "X-Hub-Signature", "sha1=3ab0615402b7320912e34a7d67c80c6a041a50d7"), specBody, false},
		{"body changed by one byte", appSecret, h("X-Hub-Signature-256", "sha256=71faf239f0f86b907318c0729704f0b2c372f3a00220fc39ad26845aac9cc056"), strings.Replace(specBody, "hello", "Hello", 1), false},
		{"wrong secret", "other", h("X-Hub-Signature-256", "sha256=71faf239f0f86b907318c0729704f0b2c372f3a00220fc39ad26845aac9cc056"), specBody, false},
		{"empty secret", "", h("X-Hub-Signature-256", platform.SignMeta("", []byte(specBody))), specBody, false},
		{"missing header", appSecret, h(), specBody, false},
		{"no algorithm", appSecret, h("X-Hub-Signature-256", "71faf239f0f86b907318c0729704f0b2c372f3a00220fc39ad26845aac9cc056"), specBody, false},
		{"sha1 value in the 256 header", appSecret, h("X-Hub-Signature-256", "sha1=3ab0615402b7320912e34a7d67c80c6a041a50d7"), specBody, false},
		{"not hex", appSecret, h("X-Hub-Signature-256", "sha256=zz"), specBody, false},
		{"truncated", appSecret, h("X-Hub-Signature-256", "sha256=71faf239f0f86b907318c0729704f0b2"), specBody, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := platform.VerifyMeta(tt.secret, tt.header, []byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("VerifyMeta = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

type fixture struct {
	stack  *channeltest.Stack
	graph  *channeltest.Platform
	sender *platform.APISender
	router *mux.Router
	conn   ivr.Connection
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := channeltest.NewStack(t)
	graph := channeltest.NewGraph(t, pageToken, "")
	conn := s.Connect(t, messenger.Channel, "bluebird1", ivr.ConnectionSettings{
		Messenger: ivr.MessengerSettings{PageAccessToken: pageToken, AppSecret: appSecret, VerifyToken: verifyToken, GraphURL: graph.URL()},
	})
	s.Connect(t, messenger.Channel, "off", ivr.ConnectionSettings{Messenger: ivr.MessengerSettings{PageAccessToken: pageToken, AppSecret: appSecret, VerifyToken: verifyToken}})
	off, _ := s.Store.GetConnection(context.Background(), messenger.Channel, "off")
	off.Active = false
	if err := s.Store.UpdateConnection(context.Background(), off); err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	(&messenger.Adapter{Pipeline: s.Pipeline}).Routes(r)
	snd := messenger.NewSender(s.HTTPSender())
	s.Register(messenger.Channel, snd)
	return &fixture{stack: s, graph: graph, sender: snd, router: r, conn: conn}
}

// event wraps messaging events in a page event batch.
func event(msgs ...string) []byte {
	return []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"PAGE1","time":1700000000000,"messaging":[%s]}]}`, strings.Join(msgs, ",")))
}

func textEvent(psid, mid, text string) string {
	b, _ := json.Marshal(text)
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":"PAGE1"},"timestamp":1700000000000,"message":{"mid":%q,"text":%s}}`, psid, mid, b)
}

func (f *fixture) post(identifier string, body []byte, sign bool) (int, string) {
	h := http.Header{"Content-Type": {"application/json"}}
	if sign {
		h.Set("X-Hub-Signature-256", platform.SignMeta(appSecret, body))
	}
	w := channeltest.Serve(f.router, http.MethodPost, "/fb/"+identifier, body, h)
	return w.Code, w.Body.String()
}

func TestVerification(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, target string
		code         int
		body         string
	}{
		{"subscribe", "/fb/bluebird1?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", 200, "1158201444"},
		{"wrong token", "/fb/bluebird1?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyham", 403, ""},
		{"no token", "/fb/bluebird1?hub.mode=subscribe&hub.challenge=1158201444", 403, ""},
		{"wrong mode", "/fb/bluebird1?hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", 403, ""},
		{"markup in challenge", "/fb/bluebird1?hub.mode=subscribe&hub.challenge=%3Cscript%3E&hub.verify_token=meatyhamhock", 400, ""},
		{"unknown identifier", "/fb/nobody?hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhock", 404, ""},
		{"inactive connection", "/fb/off?hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhock", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := channeltest.Serve(f.router, http.MethodGet, tt.target, nil, nil)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code == 200 {
				if w.Body.String() != tt.body || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
					t.Fatalf("body %q (%s), want %q as text/plain", w.Body, w.Header().Get("Content-Type"), tt.body)
				}
			}
		})
	}
}

func TestTextMessageAnsweredThroughSendAPI(t *testing.T) {
	f := newFixture(t)
	code, body := f.post("bluebird1", event(textEvent("PSID1", "mid.1", "what are your opening hours")), true)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if n := f.stack.DeliverDue(t); n != 1 {
		t.Fatalf("attempted %d", n)
	}
	got := f.graph.Accepted()
	if len(got) != 1 {
		t.Fatalf("graph got %d requests", len(got))
	}
	req := got[0]
	if req.Path != "/v21.0/me/messages" || req.Header.Get("Authorization") != "Bearer "+pageToken || len(req.Query) != 0 {
		t.Fatalf("request %s %s auth %q query %v", req.Method, req.Path, req.Header.Get("Authorization"), req.Query)
	}
	want := `{"recipient":{"id":"PSID1"},"messaging_type":"RESPONSE","message":{"text":"` + hoursAnswer + `"}}`
	if string(req.Body) != want {
		t.Fatalf("body\n got %s\nwant %s", req.Body, want)
	}
	if req.Header.Get("Idempotency-Key") == "" {
		t.Fatal("no Idempotency-Key header")
	}
	if v := channeltest.CounterValue(t, f.stack.Registry, "koel_channel_messages_total", map[string]string{"channel": "fb", "direction": "outbound"}); v != 1 {
		t.Fatalf("outbound messages = %v", v)
	}
	if v := channeltest.CounterValue(t, f.stack.Registry, "koel_channel_messages_total", map[string]string{"channel": "fb", "direction": "inbound"}); v != 1 {
		t.Fatalf("inbound messages = %v", v)
	}
}

func TestBatchQuickRepliesPostbacksAndSkippedEvents(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"object":"page","entry":[
	 {"id":"PAGE1","time":1,"messaging":[
	  {"sender":{"id":"U1"},"recipient":{"id":"PAGE1"},"timestamp":1,"message":{"mid":"m1","text":"Track","quick_reply":{"payload":"track my order"}}},
	  {"sender":{"id":"PAGE1"},"recipient":{"id":"U1"},"timestamp":2,"message":{"mid":"m2","text":"echo","is_echo":true,"app_id":1}},
	  {"sender":{"id":"U1"},"recipient":{"id":"PAGE1"},"timestamp":3,"delivery":{"mids":["m2"],"watermark":3}},
	  {"sender":{"id":"U1"},"recipient":{"id":"PAGE1"},"timestamp":4,"read":{"watermark":4}},
	  {"sender":{"id":"U1"},"recipient":{"id":"PAGE1"},"timestamp":5,"message":{"mid":"m3","attachments":[{"type":"image","payload":{"url":"https://x/y.png"}}]}}]},
	 {"id":"PAGE1","time":2,"messaging":[
	  {"sender":{"id":"U2"},"recipient":{"id":"PAGE1"},"timestamp":6,"postback":{"mid":"m4","title":"Store hours","payload":"what are your opening hours"}},
	  {"sender":{"id":"U2"},"recipient":{"id":"PAGE1"},"timestamp":7,"postback":{"title":"return policy","payload":""}}]}]}`)
	code, resp := f.post("bluebird1", body, true)
	if code != 200 {
		t.Fatalf("status %d: %s", code, resp)
	}
	if got := f.stack.Messages(t, messenger.Channel, "U1"); len(got) != 2 || got[0] != "user: track my order" {
		t.Fatalf("U1 transcript %q", got)
	}
	if got := f.stack.Messages(t, messenger.Channel, "U2"); len(got) != 4 || got[0] != "user: what are your opening hours" || got[2] != "user: return policy" {
		t.Fatalf("U2 transcript %q", got)
	}
	f.stack.DeliverDue(t)
	f.stack.DeliverDue(t) // one conversation's items go one at a time
	f.stack.DeliverDue(t)
	if got := f.graph.Accepted(); len(got) != 3 {
		t.Fatalf("graph accepted %d, want 3 (outbox %v)", len(got), f.stack.OutboxCounts(t))
	}
}

func TestDuplicateDeliveryAnsweredOnce(t *testing.T) {
	f := newFixture(t)
	body := event(textEvent("PSID9", "mid.dup", "where is my refund"))
	for i := 0; i < 3; i++ {
		if code, resp := f.post("bluebird1", body, true); code != 200 {
			t.Fatalf("delivery %d: status %d: %s", i, code, resp)
		}
	}
	f.stack.DeliverDue(t)
	f.stack.DeliverDue(t)
	if got := f.graph.Accepted(); len(got) != 1 {
		t.Fatalf("graph accepted %d replies, want 1", len(got))
	}
	if got := f.stack.Messages(t, messenger.Channel, "PSID9"); len(got) != 2 {
		t.Fatalf("transcript %q", got)
	}
}

func TestRefusedRequestsStoreNothing(t *testing.T) {
	f := newFixture(t)
	good := event(textEvent("PSIDX", "mid.x", "hello"))
	big := event(textEvent("PSIDX", "mid.big", strings.Repeat("a", platform.MaxBody)))
	nul := event(textEvent("PSIDX", "mid.nul", "hi\x00there"))
	long := event(textEvent("PSIDX", "mid.long", strings.Repeat("ab ", 2000)))
	tests := []struct {
		name       string
		identifier string
		body       []byte
		sign       bool
		code       int
	}{
		{"unsigned", "bluebird1", good, false, 403},
		{"signed with another secret", "bluebird1", good, false, 403},
		{"unknown identifier", "nobody", good, true, 404},
		{"inactive connection", "off", good, true, 404},
		{"not JSON", "bluebird1", []byte(`{"object":"page","entry":[`), true, 400},
		{"not a page event", "bluebird1", []byte(`{"object":"instagram","entry":[]}`), true, 400},
		{"entry not an array", "bluebird1", []byte(`{"object":"page","entry":{}}`), true, 400},
		{"NUL in text", "bluebird1", nul, true, 400},
		{"text over the cap", "bluebird1", long, true, 413},
		{"body over the cap", "bluebird1", big, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json"}}
			if tt.sign {
				h.Set("X-Hub-Signature-256", platform.SignMeta(appSecret, tt.body))
			} else if strings.Contains(tt.name, "another") {
				h.Set("X-Hub-Signature-256", platform.SignMeta("wrong", tt.body))
			}
			w := channeltest.Serve(f.router, http.MethodPost, "/fb/"+tt.identifier, tt.body, h)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			var eb struct {
				ErrorMessage string `json:"error_message"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.ErrorMessage == "" {
				t.Fatalf("error body %q is not {\"error_message\": ...}", w.Body)
			}
			if f.stack.UserExists(t, messenger.Channel, "PSIDX") {
				t.Fatal("a refused request stored a user")
			}
		})
	}
	if v := channeltest.CounterValue(t, f.stack.Registry, "koel_channel_rejected_total", map[string]string{"channel": "fb", "reason": "signature"}); v != 2 {
		t.Fatalf("signature rejections = %v, want 2", v)
	}
}

func TestSendErrorsClassified(t *testing.T) {
	f := newFixture(t)
	if code, _ := f.post("bluebird1", event(textEvent("P1", "m.1", "hello")), true); code != 200 {
		t.Fatal(code)
	}
	items, err := f.stack.Store.ClaimOutbox(context.Background(), time.Now().Add(time.Hour), 10, time.Minute)
	if err != nil || len(items) != 1 {
		t.Fatalf("items %d, %v", len(items), err)
	}
	item := items[0]
	tests := []struct {
		name       string
		fail       channeltest.Failure
		class      string
		final      bool
		retryAfter time.Duration
	}{
		{"429 with Retry-After", channeltest.Failure{Status: 429, RetryAfter: "7", Body: `{}`}, platform.ClassRateLimited, false, 7 * time.Second},
		{"page rate limit code 613 on HTTP 400", channeltest.GraphRateLimited, platform.ClassRateLimited, false, 0},
		{"rate limit with Graph's regain-access estimate", channeltest.Failure{Status: 400, Body: channeltest.GraphRateLimited.Body,
			Header: map[string]string{"X-Business-Use-Case-Usage": `{"112233":[{"type":"messenger","call_count":100,"total_cputime":5,"total_time":5,"estimated_time_to_regain_access":2}]}`}},
			platform.ClassRateLimited, false, 2 * time.Minute},
		{"temporary code 2 on HTTP 503", channeltest.Failure{Status: 503, Body: `{"error":{"message":"Service temporarily unavailable","type":"OAuthException","code":2}}`}, platform.ClassServer, false, 0},
		{"500 without a body", channeltest.Failure{Status: 500}, platform.ClassServer, false, 0},
		{"user unavailable code 551", channeltest.Failure{Status: 400, Body: `{"error":{"message":"This person isn't available right now.","type":"OAuthException","code":551}}`}, platform.ClassClient, true, 0},
		{"token expired code 190", channeltest.Failure{Status: 401, Body: `{"error":{"message":"Error validating access token","type":"OAuthException","code":190}}`}, platform.ClassAuth, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.graph.FailNext(tt.fail)
			err := f.sender.Send(context.Background(), f.conn, item)
			var de *platform.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send = %v, want a DeliveryError", err)
			}
			if de.Class != tt.class || de.Final != tt.final || de.RetryAfter != tt.retryAfter {
				t.Fatalf("got class %s final %v retry-after %v, want %s %v %v (%v)", de.Class, de.Final, de.RetryAfter, tt.class, tt.final, tt.retryAfter, err)
			}
			if strings.Contains(err.Error(), pageToken) {
				t.Fatal("error text holds the page token")
			}
		})
	}
	bad := f.conn
	bad.Settings.Messenger.PageAccessToken = "wrong-token"
	err = f.sender.Send(context.Background(), bad, item)
	var de *platform.DeliveryError
	if !errors.As(err, &de) || de.Class != platform.ClassAuth || !de.Final || strings.Contains(err.Error(), "wrong-token") {
		t.Fatalf("wrong token: %v", err)
	}
	if v := channeltest.CounterValue(t, f.stack.Registry, "koel_channel_delivery_failures_total", map[string]string{"channel": "fb", "class": "rate_limited"}); v != 3 {
		t.Fatalf("rate_limited failures = %v, want 3", v)
	}
	if err := f.sender.Send(context.Background(), f.conn, item); err != nil {
		t.Fatalf("send after failures: %v", err)
	}
}

func TestRenderWithinMessengerLimits(t *testing.T) {
	var qr []smf.QuickReply
	for i := 0; i < 20; i++ {
		qr = append(qr, smf.QuickReply{Title: fmt.Sprintf("Option number %d is long", i), Payload: fmt.Sprintf("option %d", i)})
	}
	req, err := messenger.RenderSMF("PSID", smf.Message{Text: strings.Repeat("é", 2500), QuickReplies: qr})
	if err != nil {
		t.Fatal(err)
	}
	var got channeltest.MessengerSend
	if err := json.Unmarshal(req.Body, &got); err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(got.Message.Text)); n != 2000 || !strings.HasSuffix(got.Message.Text, "…") {
		t.Fatalf("text of %d runes", n)
	}
	if len(got.Message.QuickReplies) != 13 {
		t.Fatalf("%d quick replies", len(got.Message.QuickReplies))
	}
	for _, q := range got.Message.QuickReplies {
		if len([]rune(q.Title)) > 20 || q.ContentType != "text" || q.Payload == "" {
			t.Fatalf("quick reply %+v", q)
		}
	}
	btn, err := messenger.RenderSMF("PSID", smf.Message{Text: "Pick one", Buttons: []smf.Button{
		{Type: smf.ButtonPostback, Title: "Track my order", Payload: "track my order"},
		{Type: smf.ButtonURL, Title: "Store locator", URL: "https://example.com/stores"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"recipient":{"id":"PSID"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"template","payload":{"template_type":"button","text":"Pick one","buttons":[{"type":"postback","title":"Track my order","payload":"track my order"},{"type":"web_url","title":"Store locator","url":"https://example.com/stores"}]}}}}`
	if string(btn.Body) != want {
		t.Fatalf("button template\n got %s\nwant %s", btn.Body, want)
	}
}

func TestSendPacedPerPage(t *testing.T) {
	f := newFixture(t)
	f.sender.Pace = platform.NewLimiter(1, 1)
	if code, _ := f.post("bluebird1", event(textEvent("P1", "m.1", "hello")), true); code != 200 {
		t.Fatal(code)
	}
	items, _ := f.stack.Store.ClaimOutbox(context.Background(), time.Now().Add(time.Hour), 10, time.Minute)
	if err := f.sender.Send(context.Background(), f.conn, items[0]); err != nil {
		t.Fatal(err)
	}
	// The page's one-per-second budget is spent: a second send must wait,
	// so with a short deadline it fails without reaching Graph.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	before := f.graph.Attempts()
	if err := f.sender.Send(ctx, f.conn, items[0]); err == nil {
		t.Fatal("second send within the page's rate went through")
	}
	if f.graph.Attempts() != before {
		t.Fatal("a paced send reached Graph")
	}
}

func TestRevokedTokenDeadLettersAtOnce(t *testing.T) {
	f := newFixture(t)
	f.graph.FailNext(channeltest.Failure{Status: 401, Body: `{"error":{"message":"Error validating access token: The session has been invalidated","type":"OAuthException","code":190}}`})
	if code, _ := f.post("bluebird1", event(textEvent("PD", "m.dead", "hello")), true); code != 200 {
		t.Fatal(code)
	}
	f.stack.DeliverDue(t)
	f.stack.DeliverDue(t)
	if got := f.stack.OutboxCounts(t); got[ivr.OutboxDead] != 1 || got[ivr.OutboxPending] != 0 || f.graph.Attempts() != 1 {
		t.Fatalf("outbox %v after %d attempts, want one dead item after one attempt", got, f.graph.Attempts())
	}
	if v := channeltest.CounterValue(t, f.stack.Registry, "koel_outbox_attempts_total", map[string]string{"result": "dead"}); v != 1 {
		t.Fatalf("dead attempts = %v", v)
	}
	if v := channeltest.CounterValue(t, f.stack.Registry, "koel_channel_delivery_failures_total", map[string]string{"channel": "fb", "class": "auth"}); v != 1 {
		t.Fatalf("auth failures = %v", v)
	}
	dead, err := f.stack.Store.ListOutbox(context.Background(), ivr.OutboxDead, 10)
	if err != nil || len(dead) != 1 || strings.Contains(dead[0].LastError, pageToken) || !strings.Contains(dead[0].LastError, "190") {
		t.Fatalf("dead letter %+v (%v)", dead, err)
	}
}
