package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// recorder is a Sender that records what it is given and fails with the
// errors given in turn (nil after they run out).
type recorder struct {
	mu    sync.Mutex
	conns []ivr.Connection
	items []ivr.OutboxItem
	errs  []error
}

func (r *recorder) Send(_ context.Context, conn ivr.Connection, it ivr.OutboxItem) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, conn)
	r.items = append(r.items, it)
	if len(r.errs) > 0 {
		err := r.errs[0]
		r.errs = r.errs[1:]
		return err
	}
	return nil
}

func (f *fixture) addConnection(t *testing.T, ch ivr.Channel, settings ivr.ConnectionSettings) ivr.Connection {
	t.Helper()
	c := ivr.Connection{BusinessID: f.conn.BusinessID, Channel: ch, Identifier: string(ch) + "-1", Active: true, Settings: settings}
	if err := f.st.CreateConnection(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) enqueueReply(t *testing.T, conn ivr.Connection, recipient, text string, id int64) ivr.OutboxItem {
	t.Helper()
	it, err := outbox.NewReplyItem(outbox.Reply{Connection: conn, BusinessID: conn.BusinessID, Recipient: recipient,
		Message: &ivr.Message{ID: id, Sender: ivr.SenderBot, Text: text, QuickReplies: []string{"Yes", "No"}, CreatedAt: f.clock.Now()},
		Now:     f.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.AppendMessages(context.Background(), nil, []*ivr.OutboxItem{it}); err != nil {
		t.Fatal(err)
	}
	return *it
}

func TestEachChannelHasItsSender(t *testing.T) {
	f := newFixture(t, time.Minute)
	fb := f.addConnection(t, ivr.ChannelFacebook, ivr.ConnectionSettings{Messenger: ivr.MessengerSettings{PageAccessToken: "page-token-1"}})
	wa := f.addConnection(t, ivr.ChannelWhatsApp, ivr.ConnectionSettings{Twilio: ivr.TwilioSettings{AuthToken: "twilio-token"}})
	fbSender, waSender := &recorder{}, &recorder{}
	f.d.Register(ivr.ChannelFacebook, fbSender)
	f.d.Register(ivr.ChannelWhatsApp, waSender)
	f.enqueueReply(t, fb, "psid-1", "Hello from the page", 1)
	f.enqueueReply(t, wa, "+919800000001", "Hello on WhatsApp", 2)

	// Credentials are read at send time: a token rotated after the item was
	// stored is the one the sender gets.
	fb.Settings.Messenger.PageAccessToken = "page-token-2"
	if err := f.st.UpdateConnection(context.Background(), fb); err != nil {
		t.Fatal(err)
	}
	if n, err := f.d.DeliverDue(context.Background()); err != nil || n != 2 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	if len(fbSender.items) != 1 || len(waSender.items) != 1 {
		t.Fatalf("fb got %d, whatsapp got %d items; want 1 each", len(fbSender.items), len(waSender.items))
	}
	if got := fbSender.conns[0].Settings.Messenger.PageAccessToken.Reveal(); got != "page-token-2" {
		t.Errorf("fb sender saw token %q, want the current one", got)
	}
	it := fbSender.items[0]
	if it.Recipient != "psid-1" || it.Channel != ivr.ChannelFacebook || it.URL != "" {
		t.Errorf("fb item %+v", it)
	}
	for _, stored := range []ivr.OutboxItem{fbSender.items[0], waSender.items[0]} {
		if bytes.Contains(stored.Body, []byte("token")) {
			t.Errorf("item body holds a credential: %s", stored.Body)
		}
	}
	m, err := outbox.DecodeMessage(it)
	if err != nil {
		t.Fatal(err)
	}
	if m.Message.Body.Text != "Hello from the page" || strings.Join(m.Message.Body.Data.QuickReplies, ",") != "Yes,No" ||
		m.User.AuthID != "psid-1" || !m.Agent.IsAutomated {
		t.Errorf("decoded message %+v", m)
	}
	if got := f.item(t, it.ID); got.Status != ivr.OutboxDelivered {
		t.Errorf("fb item %s after a successful send", got.Status)
	}
}

func TestSenderErrorClasses(t *testing.T) {
	f := newFixture(t, time.Hour)
	fb := f.addConnection(t, ivr.ChannelFacebook, ivr.ConnectionSettings{AccessToken: "EAAGm0PX4ZCpsBA-secret"})
	var logs bytes.Buffer
	d, err := outbox.New(outbox.Config{Store: f.st, Now: f.clock.Now, BaseBackoff: time.Second, MaxBackoff: time.Hour, Lease: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{errs: []error{
		outbox.RetryAfter(5*time.Minute, errors.New("graph: (#613) calls to this api have exceeded the rate limit")),
		fmt.Errorf("post https://graph.facebook.com/v19.0/me/messages?access_token=EAAGm0PX4ZCpsBA-secret: connection reset"),
		outbox.Permanent(errors.New("graph: (#100) no matching user found")),
	}}
	d.Register(ivr.ChannelFacebook, rec)
	id := f.enqueueReply(t, fb, "psid-9", "hi", 1).ID
	ctx := context.Background()

	// Rate limited: not due again before the five minutes asked for.
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	it := f.item(t, id)
	if wait := it.NextAttemptAt.Sub(f.clock.Now()); it.Status != ivr.OutboxPending || wait < 5*time.Minute {
		t.Fatalf("after a rate limit: %s, next in %v (want >= 5m)", it.Status, wait)
	}
	f.clock.Advance(5*time.Minute + time.Second)

	// A transport error that quotes the token: masked in LastError and logs.
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	it = f.item(t, id)
	if it.Status != ivr.OutboxPending || strings.Contains(it.LastError, "EAAGm0PX4ZCpsBA-secret") || !strings.Contains(it.LastError, "***") {
		t.Fatalf("after a transport error: %s %q", it.Status, it.LastError)
	}
	f.clock.Advance(time.Hour)

	// Permanent: dead at once, long before MaxAttempts.
	if _, err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if it = f.item(t, id); it.Status != ivr.OutboxDead || it.Attempts != 3 {
		t.Fatalf("after a permanent error: %s after %d attempts", it.Status, it.Attempts)
	}
	if strings.Contains(logs.String(), "EAAGm0PX4ZCpsBA-secret") {
		t.Errorf("a log line holds the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "class=rate_limited") {
		t.Errorf("logs do not name the rate-limit class:\n%s", logs.String())
	}
}

func TestItemOfAChannelWithoutSenderWaits(t *testing.T) {
	f := newFixture(t, time.Minute)
	jio := f.addConnection(t, ivr.ChannelJio, ivr.ConnectionSettings{})
	id := f.enqueueReply(t, jio, "u1", "hi", 1).ID
	if _, err := f.d.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if it := f.item(t, id); it.Status != ivr.OutboxPending || !strings.Contains(it.LastError, `no sender for channel "jio"`) {
		t.Fatalf("item %s %q, want pending with a config error", it.Status, it.LastError)
	}
	rec := &recorder{}
	f.d.Register(ivr.ChannelJio, rec)
	f.clock.Advance(time.Minute)
	if _, err := f.d.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if it := f.item(t, id); it.Status != ivr.OutboxDelivered || len(rec.items) != 1 {
		t.Fatalf("after registering: %s, %d sends", it.Status, len(rec.items))
	}
}

func TestCheckResponseAndRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999", outbox.MaxRetryAfter, true},
	}
	for _, tt := range tests {
		d, ok := outbox.ParseRetryAfter(tt.value, now)
		if d != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v %v, want %v %v", tt.value, d, ok, tt.want, tt.ok)
		}
	}
	rec := httptest.NewRecorder()
	rec.WriteHeader(http.StatusOK)
	if err := outbox.CheckResponse(rec.Result(), now); err != nil {
		t.Errorf("200: %v", err)
	}
	if outbox.Class(outbox.WithClass(outbox.ClassConfig, outbox.Permanent(errors.New("x")))) != outbox.ClassConfig {
		t.Error("WithClass over Permanent lost its class")
	}
	if !outbox.IsPermanent(outbox.WithClass(outbox.ClassConfig, outbox.Permanent(errors.New("x")))) {
		t.Error("WithClass over Permanent lost permanence")
	}
	if outbox.Permanent(nil) != nil || outbox.RetryAfter(time.Second, nil) != nil || outbox.WithClass("x", nil) != nil {
		t.Error("wrapping nil must stay nil")
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://hooks.example.com/in?x=1&api_key=abc": "https://hooks.example.com/in?api_key=***&x=***",
		"https://user:pw@example.com/p#tok":            "https://example.com/p#***",
		"https://example.com/plain":                    "https://example.com/plain",
		"http://a b/":                                  "<unparsable url>",
	}
	for in, want := range tests {
		if got := outbox.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
