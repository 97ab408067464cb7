package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

const (
	testToken  = "test-demo-token-0123456789"
	testSecret = "test-webhook-secret"
)

// testConfig is a koel serve configuration for tests: loopback, a random
// port, the demo business, no voice engines unless asked.
func testConfig(t testing.TB, dataDir, dbURL, webhookURL string) Config {
	t.Helper()
	cfg := Config{
		Addr:        "127.0.0.1:0",
		DataDir:     dataDir,
		DatabaseURL: dbURL,
		Dev:         true,
		Demo:        DemoConfig{Token: testToken, WebhookURL: webhookURL, WebhookSecret: testSecret},
		Outbox:      OutboxConfig{BaseBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		STT:         STTConfig{Engine: "none"},
		Sim:         SimConfig{Disabled: true},
	}
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startVoiceServer starts koel with pocketsphinx and the softphone on. It
// skips the test when pocketsphinx is missing outside make test, and fails
// it under make test (KOEL_TEST_DATABASE_URL set), which installs it.
func startVoiceServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	cfg.STT.Engine = "sphinx"
	cfg.Sim.Disabled = false
	srv := startServer(t, cfg)
	if srv.voice.sttState != "ok" {
		if os.Getenv("KOEL_TEST_DATABASE_URL") != "" {
			t.Fatalf("pocketsphinx unavailable under make test (%s)", srv.voice.sttState)
		}
		t.Skipf("pocketsphinx unavailable (%s); make test installs it", srv.voice.sttState)
	}
	return srv
}

// startServer starts koel and stops it when the test ends.
func startServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	srv, err := NewServer(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// receiver is an integrator's webhook endpoint: it records deliveries and
// fails the first failFirst attempts with 503.
type receiver struct {
	t         *testing.T
	mu        sync.Mutex
	failFirst int
	attempts  int
	// delivered maps idempotency key to the bodies accepted under it.
	delivered map[string][]webhook.StandardMessage
	got       chan webhook.StandardMessage
	attempted chan int
}

func newReceiver(t *testing.T, failFirst int) (*receiver, *httptest.Server) {
	r := &receiver{t: t, failFirst: failFirst, delivered: map[string][]webhook.StandardMessage{},
		got: make(chan webhook.StandardMessage, 16), attempted: make(chan int, 16)}
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return r, ts
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if err := webhook.Verify(testSecret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		rc.t.Errorf("delivery signature: %v", err)
		http.Error(w, "bad signature", 401)
		return
	}
	rc.mu.Lock()
	rc.attempts++
	n := rc.attempts
	fail := n <= rc.failFirst
	key := r.Header.Get(webhook.HeaderIdempotencyKey)
	var msg webhook.StandardMessage
	if !fail {
		if err := json.Unmarshal(body, &msg); err != nil {
			rc.t.Errorf("delivery is not a standard message: %v: %s", err, body)
		}
		rc.delivered[key] = append(rc.delivered[key], msg)
	}
	rc.mu.Unlock()
	rc.attempted <- n
	if fail {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	rc.got <- msg
	w.WriteHeader(http.StatusOK)
}

func postJSON(t *testing.T, url string, headers map[string]string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

var webhookHeaders = map[string]string{"Authorization": "Bearer " + testToken, "client-id": "demo"}

func logMessage(authID, text string) string {
	return fmt.Sprintf(`{"user":{"auth_id":%q},"message_body":%q,"message_type":0,"business_id":1}`, authID, text)
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func testWebhookEndToEnd(t *testing.T, dbURL string) {
	rc, hook := newReceiver(t, 0)
	srv := startServer(t, testConfig(t, t.TempDir(), dbURL, hook.URL))

	status, body := postJSON(t, srv.URL()+webhook.PathLogMessage, webhookHeaders, logMessage("alice", "when are you open on sunday"))
	if status != http.StatusOK {
		t.Fatalf("log_message_from_user: %d %s", status, body)
	}
	var resp webhook.LogMessageResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.MessageID == 0 || resp.MessageBody != "when are you open on sunday" || resp.MessageType != 0 {
		t.Fatalf("response = %+v", resp)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", resp.CreatedAt); err != nil {
		t.Fatalf("created_at %q is not the seed's ISO format: %v", resp.CreatedAt, err)
	}

	msg := waitFor(t, rc.got, "the bot's reply at the webhook")
	if msg.Version != "1.0" || msg.EventName != "message" || msg.BusinessID != 1 || msg.User.AuthID != "alice" {
		t.Fatalf("standard message envelope = %+v", msg)
	}
	if msg.Message.Body.Type != "TEXT" || !msg.Agent.IsAutomated || msg.Message.ID == 0 {
		t.Fatalf("standard message body = %+v agent %+v", msg.Message, msg.Agent)
	}
	if !strings.Contains(msg.Message.Body.Text, "from ten to six on Sunday") {
		t.Fatalf("reply %q is not the opening-hours answer", msg.Message.Body.Text)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", msg.Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", msg.Timestamp, err)
	}
}

func TestWebhookEndToEndSQLite(t *testing.T) {
	testWebhookEndToEnd(t, "")
}

func TestWebhookEndToEndPostgres(t *testing.T) {
	testWebhookEndToEnd(t, storetest.PostgresURL(t))
}

// TestOutboxSurvivesRestart: the receiver fails the first 3 attempts, koel is
// restarted after the second, the 4th attempt succeeds, and the receiver has
// the message exactly once under its idempotency key.
func TestOutboxSurvivesRestart(t *testing.T) {
	rc, hook := newReceiver(t, 3)
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir, "", hook.URL)

	first, err := NewServer(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	status, body := postJSON(t, first.URL()+webhook.PathLogMessage, webhookHeaders, logMessage("bob", "how much is delivery"))
	if status != http.StatusOK {
		t.Fatalf("log_message_from_user: %d %s", status, body)
	}
	waitFor(t, rc.attempted, "attempt 1")
	waitFor(t, rc.attempted, "attempt 2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, cfg) // same data dir: the pending delivery is still there
	for n := waitFor(t, rc.attempted, "attempt after restart"); n < 4; n = waitFor(t, rc.attempted, "attempt 4") {
	}
	msg := waitFor(t, rc.got, "the successful delivery")
	if !strings.Contains(msg.Message.Body.Text, "Delivery is free for orders above five hundred rupees") {
		t.Fatalf("reply %q is not the delivery-charges answer", msg.Message.Body.Text)
	}

	// The item is marked delivered after exactly 4 attempts, so it is
	// never sent again.
	items, err := second.store.ListOutbox(ctx, ivr.OutboxDelivered, 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(items) == 0 && time.Now().Before(deadline) {
		select {
		case n := <-rc.attempted:
			t.Fatalf("unexpected attempt %d after success", n)
		case <-time.After(20 * time.Millisecond):
		}
		if items, err = second.store.ListOutbox(ctx, ivr.OutboxDelivered, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(items) != 1 || items[0].Attempts != 4 {
		t.Fatalf("delivered items = %+v, want one after 4 attempts", items)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.delivered) != 1 {
		t.Fatalf("receiver accepted %d idempotency keys, want 1", len(rc.delivered))
	}
	for key, msgs := range rc.delivered {
		if len(msgs) != 1 || key != items[0].IdempotencyKey {
			t.Fatalf("key %q accepted %d times (outbox key %q)", key, len(msgs), items[0].IdempotencyKey)
		}
	}
}

func TestBotAPIConverse(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir(), "", ""))
	url := srv.URL() + "/api/bots/1/converse"
	auth := map[string]string{"Authorization": "Bearer " + testToken}

	status, body := postJSON(t, url, auth, `{"user_id":"carol","text":"can i pay using upi"}`)
	if status != http.StatusOK {
		t.Fatalf("converse: %d %s", status, body)
	}
	var resp struct {
		Messages []struct {
			Text         string   `json:"text"`
			QuickReplies []string `json:"quick_replies"`
		} `json:"messages"`
		Node       string   `json:"node"`
		Confidence *float64 `json:"confidence"`
		Handoff    *bool    `json:"handoff"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Node != "payment_methods" || len(resp.Messages) != 1 || resp.Confidence == nil || *resp.Confidence <= 0 || *resp.Confidence > 1 || resp.Handoff == nil || *resp.Handoff {
		t.Fatalf("converse reply = %s", body)
	}
	if resp.Messages[0].QuickReplies == nil {
		t.Fatalf("quick_replies must be an array, got %s", body)
	}

	status, body = postJSON(t, url, auth, `{"user_id":"carol","text":"i want to talk to a person"}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"handoff":true`) {
		t.Fatalf("handoff request: %d %s", status, body)
	}
	status, body = postJSON(t, url, auth, `{"user_id":"carol","text":"what is the capital of peru"}`)
	if status != http.StatusOK || !strings.Contains(string(body), `"node":""`) || !strings.Contains(string(body), "did not understand") {
		t.Fatalf("off-topic: %d %s", status, body)
	}
}

// TestBadInputIsRefusedAndStoresNothing sends malformed, unauthorised and
// oversized requests to both JSON APIs and checks the status, the seed's
// error shape, and that no message was stored.
func TestBadInputIsRefusedAndStoresNothing(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir(), "", ""))
	ctx := context.Background()

	// A second business whose webhook users must register first.
	biz := ivr.Business{Name: "closed", TokenHash: ivr.HashToken("closed-token"), ClientID: "closed", FallbackMessage: "?", Active: true}
	if err := srv.store.CreateBusiness(ctx, &biz); err != nil {
		t.Fatal(err)
	}
	conn := ivr.Connection{BusinessID: biz.ID, Channel: ivr.ChannelWebhook, Identifier: "closed", Active: true}
	if err := srv.store.CreateConnection(ctx, &conn); err != nil {
		t.Fatal(err)
	}
	closedHeaders := map[string]string{"Authorization": "Bearer closed-token", "client-id": "closed"}
	closedBody := fmt.Sprintf(`{"user":{"auth_id":"dave"},"message_body":"hi","message_type":0,"business_id":%d}`, biz.ID)

	big := `{"user":{"auth_id":"x"},"message_body":"` + strings.Repeat("a", 40<<10) + `","message_type":0,"business_id":1}`
	hook := srv.URL() + webhook.PathLogMessage
	converse := srv.URL() + "/api/bots/1/converse"
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	tests := []struct {
		name    string
		url     string
		headers map[string]string
		body    string
		status  int
		message string
	}{
		{"webhook no auth", hook, nil, logMessage("x", "hi"), 401, "invalid authorization details"},
		{"webhook wrong token", hook, map[string]string{"Authorization": "Bearer nope", "client-id": "demo"}, logMessage("x", "hi"), 401, "invalid authorization details"},
		{"webhook wrong client-id", hook, map[string]string{"Authorization": "Bearer " + testToken, "client-id": "other"}, logMessage("x", "hi"), 401, "invalid authorization details"},
		{"webhook unknown business", hook, webhookHeaders, `{"user":{"auth_id":"x"},"message_body":"hi","message_type":0,"business_id":999}`, 401, "invalid authorization details"},
		{"webhook malformed json", hook, webhookHeaders, `{"user":`, 400, "malformed JSON"},
		{"webhook not an object", hook, webhookHeaders, `[1,2]`, 400, "request body must be a JSON object"},
		{"webhook mistyped field", hook, webhookHeaders, `{"user":{"auth_id":"x"},"message_body":"hi","message_type":0,"business_id":"one"}`, 400, "field business_id must be int64"},
		{"webhook unknown field", hook, webhookHeaders, `{"user":{"auth_id":"x"},"message_body":"hi","business_id":1,"evil":true}`, 400, `unknown field "evil"`},
		{"webhook missing business_id", hook, webhookHeaders, `{"user":{"auth_id":"x"},"message_body":"hi"}`, 400, "business_id missing in the request"},
		{"webhook missing auth_id", hook, webhookHeaders, `{"user":{},"message_body":"hi","business_id":1}`, 400, "auth_id missing in the request"},
		{"webhook missing message_body", hook, webhookHeaders, `{"user":{"auth_id":"x"},"business_id":1}`, 400, "message_body missing in the request"},
		{"webhook other message_type", hook, webhookHeaders, `{"user":{"auth_id":"x"},"message_body":"hi","message_type":3,"business_id":1}`, 400, "unsupported message_type 3 (only 0 is processed)"},
		{"webhook too large", hook, webhookHeaders, big, 413, "request body is larger than 32768 bytes"},
		{"webhook unregistered user", hook, closedHeaders, closedBody, 403, "user is not registered"},
		{"converse no auth", converse, nil, `{"user_id":"x","text":"hi"}`, 401, "invalid authorization details"},
		{"converse wrong token", converse, map[string]string{"Authorization": "Bearer nope"}, `{"user_id":"x","text":"hi"}`, 401, "invalid authorization details"},
		{"converse unknown business", srv.URL() + "/api/bots/999/converse", bearer, `{"user_id":"x","text":"hi"}`, 404, "business 999 not found"},
		{"converse malformed", converse, bearer, `{"user_id":`, 400, "malformed JSON"},
		{"converse missing text", converse, bearer, `{"user_id":"x"}`, 400, "text missing in the request"},
		{"converse missing user", converse, bearer, `{"text":"hi"}`, 400, "user_id missing in the request"},
		{"converse two objects", converse, bearer, `{"user_id":"x","text":"hi"}{}`, 400, "request body must hold a single JSON object"},
		{"converse too large", converse, bearer, `{"user_id":"x","text":"` + strings.Repeat("b", 70<<10) + `"}`, 413, "request body is larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postJSON(t, tt.url, tt.headers, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", status, tt.status, body)
			}
			var eb struct {
				ErrorMessage string `json:"error_message"`
			}
			if err := json.Unmarshal(body, &eb); err != nil || eb.ErrorMessage != tt.message {
				t.Fatalf("body = %s, want error_message %q", body, tt.message)
			}
		})
	}
	// Nothing was stored by any of them: no user exists on either business.
	for _, u := range []struct {
		biz int64
		ch  ivr.Channel
		id  string
	}{{1, ivr.ChannelWebhook, "x"}, {1, ivr.ChannelAPI, "x"}, {biz.ID, ivr.ChannelWebhook, "dave"}} {
		if _, err := srv.store.GetUser(ctx, u.biz, u.ch, u.id); err == nil {
			t.Errorf("user %s/%s was stored by a refused request", u.ch, u.id)
		}
	}
	// Registering the user lets the same message through.
	status, body := postJSON(t, srv.URL()+webhook.PathRegisterUser, closedHeaders, fmt.Sprintf(`{"business_id":%d,"user":{"auth_id":"dave"}}`, biz.ID))
	if status != 200 {
		t.Fatalf("register_user: %d %s", status, body)
	}
	if status, body := postJSON(t, hook, closedHeaders, closedBody); status != 200 {
		t.Fatalf("after registration: %d %s", status, body)
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	srv := startServer(t, testConfig(t, t.TempDir(), "", ""))
	for _, c := range []struct {
		path string
		want int
	}{{"/healthz", 200}, {"/readyz", 200}, {"/nope", 404}, {"/metrics", 200}} {
		path, want := c.path, c.want
		resp, err := http.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s = %d, want %d: %s", path, resp.StatusCode, want, b)
		}
		if path == "/metrics" && !bytes.Contains(b, []byte("koel_http_requests_total")) {
			t.Fatalf("/metrics lacks koel_http_requests_total")
		}
		if path == "/metrics" && bytes.Contains(b, []byte(testToken)) {
			t.Fatalf("/metrics leaks the token")
		}
	}
	// A configured speech engine that failed to load makes the node unready.
	srv.voice.sttState = "unavailable: pocketsphinx is not compiled into this build"
	resp, err := http.Get(srv.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without speech recognition = %d, want 503", resp.StatusCode)
	}
	srv.voice.sttState = "disabled"

	srv.ready.Store(false) // what Shutdown does first
	resp, err = http.Get(srv.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining = %d, want 503", resp.StatusCode)
	}
}

// TestDeclaredBusinessAnswers starts koel with a business declared in the
// YAML file (token from the environment, FAQ from a CSV file) and talks to
// it over the bot API and KooKoo.
func TestDeclaredBusinessAnswers(t *testing.T) {
	dir := t.TempDir()
	faqPath := dir + "/acme.csv"
	if err := os.WriteFile(faqPath, []byte("node_name,user_says,bot_says\nhours,when are you open|opening hours,Acme is open around the clock.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlPath := dir + "/koel.yaml"
	yamlText := `businesses:
  - id: 7
    name: Acme
    token_env: ACME_TOKEN
    client_id: acme
    fallback_message: Acme did not get that.
    faq_file: ` + faqPath + `
    connections:
      - channel: kookoo
        identifier: acme
        settings:
          welcome_message: Welcome to Acme.
          silence_period: 2
          max_record_time: 8
`
	if err := os.WriteFile(yamlPath, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{"ACME_TOKEN": "acme-token", "KOEL_STT_ENGINE": "none", "KOEL_SIM": "0"})
	cfg, err := parseServeConfig([]string{"--config", yamlPath, "--addr", "127.0.0.1:0", "--data-dir", dir + "/data"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(context.Background(), cfg, testLogger(t), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	status, body := postJSON(t, srv.URL()+"/api/bots/7/converse", map[string]string{"Authorization": "Bearer acme-token"}, `{"user_id":"u","text":"when are you open"}`)
	if status != 200 || !strings.Contains(string(body), "Acme is open around the clock.") {
		t.Fatalf("converse: %d %s", status, body)
	}
	resp, err := http.Get(srv.URL() + "/kookoo/acme?event=NewCall&sid=91&cid=0999")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Welcome to Acme.") || !strings.Contains(string(b), `silence="2" maxduration="8"`) {
		t.Fatalf("NewCall: %s", b)
	}
}
