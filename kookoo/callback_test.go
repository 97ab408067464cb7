package kookoo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func postForm(target, xmlTextAndClose string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(xmlTextAndClose))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestParseCallback(t *testing.T) {
	tests := []struct {
		name     string
		req      *http.Request
		want     CallbackEvent
		answered bool
		wantErr  error
	}{
		{"answered (CCHQ)", postForm("/kookoo/demo/finished", "sid=123&status=answered&duration=20&start_time=2026-04-10+13%3A05%3A02&caller_id=918065740671&phone_no=09704665032&ringing_time=4&status_details=Normal"),
			CallbackEvent{SID: "123", Status: "answered", StartTime: "2026-04-10 13:05:02", CallerID: "918065740671", PhoneNo: "09704665032", StatusDetails: "Normal", Duration: 20, RingingTime: 4}, true, nil},
		{"not answered", postForm("/f", "sid=124&status=ring&duration=0"),
			CallbackEvent{SID: "124", Status: "ring", Duration: 0, RingingTime: -1}, false, nil},
		{"GET query", httptest.NewRequest(http.MethodGet, "/f?sid=125&status=Answered", nil),
			CallbackEvent{SID: "125", Status: "Answered", Duration: -1, RingingTime: -1}, true, nil},
		{"missing sid", postForm("/f", "status=answered"), CallbackEvent{}, false, ErrInvalidCallback},
		{"bad sid", postForm("/f", "sid=%3Cx%3E"), CallbackEvent{}, false, ErrInvalidCallback},
		{"bad duration", postForm("/f", "sid=1&duration=long"), CallbackEvent{}, false, ErrInvalidCallback},
		{"too large", postForm("/f", "sid=1&status_details="+strings.Repeat("x", MaxValueBytes+1)), CallbackEvent{}, false, ErrTooLarge},
		{"method", httptest.NewRequest(http.MethodDelete, "/f?sid=1", nil), CallbackEvent{}, false, ErrMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCallback(tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if got.Answered() != tt.answered {
				t.Errorf("Answered() = %v", got.Answered())
			}
		})
	}
}

func TestCallbackHandler(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	var got []CallbackEvent
	fail := false
	h := CallbackHandler(func(ctx context.Context, ev CallbackEvent) error {
		if ctx == nil {
			t.Error("nil context")
		}
		got = append(got, ev)
		if fail {
			return errors.New("store down")
		}
		return nil
	}, logger)

	tests := []struct {
		name     string
		req      *http.Request
		fail     bool
		wantCode int
		handled  bool
	}{
		{"answered", postForm("/f", "sid=1&status=answered&phone_no=09704665032&duration=3"), false, http.StatusOK, true},
		{"handler error", postForm("/f", "sid=2&status=answered"), true, http.StatusInternalServerError, true},
		{"no sid", postForm("/f", "status=answered&phone_no=09704665032"), false, http.StatusBadRequest, false},
		{"too large", postForm("/f", "sid=3&x="+strings.Repeat("y", MaxRequestBytes+1)), false, http.StatusRequestEntityTooLarge, false},
		{"method", httptest.NewRequest(http.MethodPut, "/f", nil), false, http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fail = nil, tt.fail
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tt.req)
			if rec.Code != tt.wantCode {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.wantCode, rec.Body.String())
			}
			if (len(got) == 1) != tt.handled {
				t.Errorf("handled %d events, want handled=%v", len(got), tt.handled)
			}
		})
	}
	if strings.Contains(logs.String(), "09704665032") {
		t.Errorf("log holds a full phone number:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "*******5032") {
		t.Errorf("log lacks the masked number:\n%s", logs.String())
	}
}
