package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

const secret = "s3cret"

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := fmt.Sprint(now.Unix())
	body := []byte(`{"a":1}`)
	sig := webhook.Sign(secret, ts, body)
	tests := []struct {
		name                  string
		secret, ts, sig, body string
		now                   time.Time
		ok                    bool
	}{
		{"valid", secret, ts, sig, string(body), now, true},
		{"wrong secret", "other", ts, sig, string(body), now, false},
		{"tampered body", secret, ts, sig, `{"a":2}`, now, false},
		{"tampered timestamp", secret, fmt.Sprint(now.Unix() + 1), sig, string(body), now, false},
		{"too old", secret, ts, sig, string(body), now.Add(6 * time.Minute), false},
		{"from the future", secret, ts, sig, string(body), now.Add(-6 * time.Minute), false},
		{"not a timestamp", secret, "yesterday", sig, string(body), now, false},
		{"missing signature", secret, ts, "", string(body), now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.ts, tt.sig, []byte(tt.body), tt.now, 5*time.Minute)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, webhook.ErrBadSignature)) {
				t.Fatalf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestSignGolden pins the signature scheme integrators implement.
func TestSignGolden(t *testing.T) {
	got := webhook.Sign("s3cret", "1800000000", []byte(`{"a":1}`))
	// python3 -c "import hmac,hashlib;print(hmac.new(b's3cret',b'1800000000.{\"a\":1}',hashlib.sha256).hexdigest())"
	const want = "sha256=476d445fc5d734bcaf69961f0de38cb8c2ec42450829655895ca5e064c0765c9"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

type received struct {
	header http.Header
	body   string
	path   string
}

func receiver(t *testing.T, status int, extra http.Header) (*httptest.Server, <-chan received) {
	t.Helper()
	ch := make(chan received, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- received{header: r.Header.Clone(), body: string(b), path: r.URL.RequestURI()}
		for k, v := range extra {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestSenderPostsSignedStandardMessage(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	srv, got := receiver(t, http.StatusNoContent, nil)
	s := webhook.NewSender(nil, func() time.Time { return now })
	conn := ivr.Connection{ID: 7, Channel: ivr.ChannelWebhook, Settings: ivr.ConnectionSettings{SecretKey: secret, WebhookURL: srv.URL + "/conn"}}
	item := ivr.OutboxItem{ID: 1, ConnectionID: 7, IdempotencyKey: "webhook-7-msg-9", URL: srv.URL + "/item", Body: []byte(`{"x":1}`), ContentType: "application/json", Attempts: 2}
	if err := s.Send(context.Background(), conn, item); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.path != "/item" {
		t.Errorf("posted to %q, want the item's URL", r.path)
	}
	if r.body != `{"x":1}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("body %q content type %q", r.body, r.header.Get("Content-Type"))
	}
	if r.header.Get(webhook.HeaderIdempotencyKey) != "webhook-7-msg-9" || r.header.Get(webhook.HeaderAttempt) != "3" {
		t.Errorf("headers %v", r.header)
	}
	if err := webhook.Verify(secret, r.header.Get(webhook.HeaderTimestamp), r.header.Get(webhook.HeaderSignature), []byte(r.body), now, time.Minute); err != nil {
		t.Errorf("signature: %v", err)
	}

	// No URL on the item: the connection's current one; no secret: unsigned.
	conn.Settings.SecretKey = ""
	item.URL = ""
	if err := s.Send(context.Background(), conn, item); err != nil {
		t.Fatal(err)
	}
	r = <-got
	if r.path != "/conn" || r.header.Get(webhook.HeaderSignature) != "" {
		t.Errorf("second delivery to %q signature %q", r.path, r.header.Get(webhook.HeaderSignature))
	}
}

func TestSenderClassifiesAnswers(t *testing.T) {
	tests := []struct {
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration
		class      string
	}{
		{http.StatusInternalServerError, nil, false, 0, outbox.ClassServer},
		{http.StatusBadGateway, nil, false, 0, outbox.ClassServer},
		{http.StatusTooManyRequests, http.Header{"Retry-After": {"120"}}, false, 2 * time.Minute, outbox.ClassRateLimited},
		{http.StatusTooManyRequests, nil, false, 0, outbox.ClassRateLimited},
		{http.StatusServiceUnavailable, http.Header{"Retry-After": {"7"}}, false, 7 * time.Second, outbox.ClassRateLimited},
		{http.StatusRequestTimeout, nil, false, 0, outbox.ClassClient},
		{http.StatusNotFound, nil, true, 0, outbox.ClassClient},
		{http.StatusUnauthorized, nil, true, 0, outbox.ClassClient},
		{http.StatusTemporaryRedirect, http.Header{"Location": {"http://127.0.0.1:1/"}}, false, 0, outbox.ClassRedirect},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			srv, got := receiver(t, tt.status, tt.header)
			s := webhook.NewSender(nil, nil)
			err := s.Send(context.Background(), ivr.Connection{}, ivr.OutboxItem{IdempotencyKey: "k", URL: srv.URL})
			<-got
			if err == nil {
				t.Fatal("no error")
			}
			if outbox.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", outbox.IsPermanent(err), tt.permanent, err)
			}
			if d, ok := outbox.RetryDelay(err); d != tt.retryAfter || ok != (tt.retryAfter > 0 || tt.class == outbox.ClassRateLimited && tt.header != nil) {
				t.Errorf("retry delay = %v %v, want %v", d, ok, tt.retryAfter)
			}
			if c := outbox.Class(err); c != tt.class {
				t.Errorf("class = %q, want %q", c, tt.class)
			}
		})
	}
}

func TestSenderErrorsNeverQuoteTheQuery(t *testing.T) {
	s := webhook.NewSender(nil, nil)
	// A closed port: the transport error would quote the full URL.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook?api_key=topsecret&x=1"
	srv.Close()
	err := s.Send(context.Background(), ivr.Connection{}, ivr.OutboxItem{IdempotencyKey: "k", URL: url})
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error %v must exist and not quote the query value", err)
	}
	if outbox.Class(err) != outbox.ClassNetwork {
		t.Errorf("class %q, want network", outbox.Class(err))
	}
	err = s.Send(context.Background(), ivr.Connection{}, ivr.OutboxItem{IdempotencyKey: "k"})
	if !outbox.IsPermanent(err) || outbox.Class(err) != outbox.ClassConfig {
		t.Errorf("no URL anywhere: %v, want a permanent config error", err)
	}
	err = s.Send(context.Background(), ivr.Connection{}, ivr.OutboxItem{IdempotencyKey: "k", URL: "http://a b/?api_key=topsecret"})
	if !outbox.IsPermanent(err) || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("malformed URL: %v, want permanent without the query", err)
	}
}

// TestStandardMessageIsTheOutboxMessage: the webhook channel's Standard
// Message Format and outbox.Message, which every other channel's sender
// decodes, are the same JSON.
func TestStandardMessageIsTheOutboxMessage(t *testing.T) {
	sm := webhook.StandardMessage{Version: "1.0", Timestamp: "2018-10-04T12:41:27.980Z", User: webhook.User{AuthID: "u-1"}, BusinessID: 3,
		EventName: "message", Agent: webhook.MessageAgent{ID: 2, Name: "bot", ProfileImage: "p", IsAutomated: true},
		Message: webhook.MessageEvent{ID: 9, Body: webhook.MessageBody{Text: "hi", Type: "TEXT", Data: webhook.MessageData{QuickReplies: []string{"a"}}}}}
	a, err := json.Marshal(sm)
	if err != nil {
		t.Fatal(err)
	}
	m, err := outbox.DecodeMessage(ivr.OutboxItem{Body: a})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	// And outbox.NewReplyItem builds what the webhook channel builds.
	it, err := outbox.NewReplyItem(outbox.Reply{Connection: ivr.Connection{ID: 4, Channel: ivr.ChannelWebhook}, BusinessID: 3, Recipient: "u-1",
		Message: &ivr.Message{ID: 9, Sender: ivr.SenderBot, Text: "hi", QuickReplies: []string{"a"}, CreatedAt: time.Date(2018, 10, 4, 12, 41, 27, 980e6, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	sm.Agent = webhook.MessageAgent{Name: "bot", IsAutomated: true}
	want, _ := json.Marshal(sm)
	if string(it.Body) != string(want) || it.IdempotencyKey != "webhook-4-msg-9" || it.Recipient != "u-1" {
		t.Fatalf("reply item %s %q, want %s", it.Body, it.IdempotencyKey, want)
	}
}
