package outbox_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// FuzzParseRetryAfter: any header value gives a delay within
// 0..MaxRetryAfter or is refused.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"120", "0", "-5", "", "Wed, 21 Oct 2015 07:28:00 GMT", now.Add(time.Hour).Format(http.TimeFormat), "1e9", " 7 ", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := outbox.ParseRetryAfter(v, now)
		if !ok && d != 0 {
			t.Fatalf("refused %q with a delay %v", v, d)
		}
		if d < 0 || d > outbox.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside 0..%v", v, d, outbox.MaxRetryAfter)
		}
	})
}

// FuzzDecodeMessage: any body is decoded or refused as a permanent error,
// never a panic; a decoded message re-encodes as an item body.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"version":"1.0","user":{"auth_id":"u"},"message":{"id":3,"body":{"text":"hi","type":"TEXT","data":{"quick_replies":["a"]}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`{"message":{"body":{"data":{"quick_replies":null}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := outbox.DecodeMessage(ivr.OutboxItem{Body: b})
		if err != nil {
			if !outbox.IsPermanent(err) {
				t.Fatalf("a bad body is not a permanent error: %v", err)
			}
			return
		}
		it, err := outbox.NewReplyItem(outbox.Reply{Connection: ivr.Connection{ID: 1, Channel: ivr.ChannelWebhook}, Recipient: m.User.AuthID,
			Message: &ivr.Message{ID: m.Message.ID, Text: m.Message.Body.Text, QuickReplies: m.Message.Body.Data.QuickReplies}})
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := outbox.DecodeMessage(*it); err != nil {
			t.Fatalf("a built item does not decode: %v", err)
		}
	})
}
