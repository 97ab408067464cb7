package ivr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
)

type statusErr struct{}

func (statusErr) Error() string             { return "teapot" }
func (statusErr) HTTPStatus() (int, string) { return http.StatusTeapot, "short and stout" }

// TestHTTPStatus: the one mapping of domain errors to HTTP, through any
// wrapping.
func TestHTTPStatus(t *testing.T) {
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{ivr.Invalid("text", "contains a NUL byte"), 400, "text contains a NUL byte"},
		{fmt.Errorf("ivr: x: %w", ivr.CheckText("auth_id", "a\xff", 0)), 400, "auth_id is not valid UTF-8"},
		{fmt.Errorf("append: %w: message 0 text contains a NUL byte", store.ErrInvalid), 400, "invalid input"},
		{ivr.ErrEmptyText, 400, "text missing in the request"},
		{fmt.Errorf("%w: 5000 bytes", ivr.ErrTextTooLong), 413, "text is longer than 4096 bytes"},
		{fmt.Errorf("x: %w", ivr.ErrUserNotRegistered), 403, "user is not registered"},
		{fmt.Errorf("x: %w", ivr.ErrConnectionInactive), 404, "connection is not active"},
		{ivr.ErrBusinessInactive, 403, "business is inactive"},
		{fmt.Errorf("get: %w", store.ErrNotFound), 404, "not found"},
		{store.ErrConflict, 409, "conflict"},
		{store.ErrVersionConflict, 409, "concurrent update, please retry"},
		{store.ErrLocked, 409, "concurrent update, please retry"},
		{fmt.Errorf("x: %w", ivr.ErrUnavailable), 503, "temporarily unavailable, please retry"},
		{fmt.Errorf("bot: %w", context.DeadlineExceeded), 503, "timed out, please retry"},
		{fmt.Errorf("wrapped: %w", statusErr{}), 418, "short and stout"},
		{fmt.Errorf("parse form: %w", &http.MaxBytesError{Limit: 1024}), 413, "request body is larger than 1024 bytes"},
		{errors.New("pq: connection refused to 10.0.0.3"), 500, "internal error"},
	}
	for _, tc := range cases {
		status, msg := ivr.HTTPStatus(tc.err)
		if status != tc.status || msg != tc.msg {
			t.Errorf("HTTPStatus(%v) = %d %q, want %d %q", tc.err, status, msg, tc.status, tc.msg)
		}
		if status == 500 && strings.Contains(msg, "10.0.0.3") {
			t.Errorf("a server error leaks its detail: %q", msg)
		}
	}
	if !errors.Is(ivr.Invalid("x", "y"), store.ErrInvalid) {
		t.Error("an InputError does not match store.ErrInvalid")
	}
}

// TestEngineRefusesUnstorableInputBeforeWriting: a NUL byte or invalid
// UTF-8 in the text, the user id or the message id is refused with an
// InputError before the user, the conversation or any message is written.
func TestEngineRefusesUnstorableInputBeforeWriting(t *testing.T) {
	f := newFixture(t, time.Second)
	ctx := context.Background()
	cases := []struct {
		name, user, text, msgID, field string
	}{
		{"NUL in text", "fresh", "hi\x00there", "", "text"},
		{"invalid UTF-8 in text", "fresh", "caf\xe9", "", "text"},
		{"NUL in user id", "fr\x00esh", "hi", "", "user id"},
		{"invalid UTF-8 in user id", "fresh\xff", "hi", "", "user id"},
		{"blank user id", "  ", "hi", "", "user id"},
		{"NUL in message id", "fresh", "hi", "m\x001", "message id"},
	}
	for _, tc := range cases {
		in := f.inbound(tc.user, tc.text)
		in.ExternalMessageID = tc.msgID
		_, err := f.engine.Handle(ctx, in)
		var ie *ivr.InputError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Fatalf("%s: err = %v, want an InputError on %q", tc.name, err, tc.field)
		}
		if status, _ := ivr.HTTPStatus(err); status != http.StatusBadRequest {
			t.Fatalf("%s: status %d", tc.name, status)
		}
		for _, id := range []string{"fresh", "fr\x00esh", "fresh\xff"} {
			if _, err := f.st.GetUser(ctx, f.biz.ID, ivr.ChannelWebhook, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s: user %q was stored (err %v)", tc.name, id, err)
			}
		}
	}
	if f.bot.Calls() != 0 {
		t.Fatal("bot asked for invalid input")
	}
}
