package platform_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

func TestClientRefusesInternalAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	strict := platform.NewClient(platform.ClientOptions{})
	for _, u := range []string{srv.URL, "http://10.1.2.3:9/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/", "http://0.0.0.0:9/", "http://100.64.0.1:9/"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		_, err := strict.Do(req)
		cancel()
		if !errors.Is(err, platform.ErrAddressRefused) {
			t.Fatalf("%s: err %v, want ErrAddressRefused", u, err)
		}
	}
	dev := platform.NewClient(platform.ClientOptions{AllowLoopback: true})
	resp, err := dev.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
	resp.Body.Close()
}

func TestPostClassifiesAnswers(t *testing.T) {
	var status int
	var retryAfter string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	s := &platform.Sender{Client: platform.NewClient(platform.ClientOptions{AllowLoopback: true})}
	tests := []struct {
		status     int
		retryAfter string
		permanent  bool
		delay      time.Duration
		class      string
	}{
		{200, "", false, 0, ""},
		{202, "", false, 0, ""},
		{429, "3", false, 3 * time.Second, "rate_limited"},
		{429, "", false, 0, "rate_limited"},
		{503, "2", false, 2 * time.Second, "rate_limited"},
		{500, "", false, 0, "server"},
		{408, "", false, 0, "server"},
		{400, "", true, 0, "client"},
		{401, "", true, 0, "auth"},
		{404, "", true, 0, "client"},
	}
	for _, tt := range tests {
		status, retryAfter = tt.status, tt.retryAfter
		req, _ := platform.NewRequest(srv.URL, "/x", []byte("{}"), "application/json")
		err := s.Post(context.Background(), "fb", ivr.OutboxItem{IdempotencyKey: "k"}, req, nil)
		if tt.class == "" {
			if err != nil {
				t.Fatalf("%d: %v", tt.status, err)
			}
			continue
		}
		d, hasDelay := outbox.RetryDelay(err)
		if outbox.IsPermanent(err) != tt.permanent || d != tt.delay || (tt.delay > 0 && !hasDelay) || outbox.Class(err) != tt.class {
			t.Fatalf("%d (Retry-After %q): permanent %v delay %v class %s, want %v %v %s (%v)", tt.status, tt.retryAfter,
				outbox.IsPermanent(err), d, outbox.Class(err), tt.permanent, tt.delay, tt.class, err)
		}
	}
}

func TestSharedSecret(t *testing.T) {
	tests := []struct {
		header, secret string
		ok             bool
	}{
		{"App s3cret", "s3cret", true},
		{"Bearer s3cret", "s3cret", true},
		{"s3cret", "s3cret", true},
		{"app  s3cret ", "s3cret", true},
		{"App s3cre", "s3cret", false},
		{"Basic s3cret", "s3cret", false},
		{"", "s3cret", false},
		{"App ", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		if got := platform.SharedSecret(r, tt.secret); got != tt.ok {
			t.Fatalf("SharedSecret(%q, %q) = %v", tt.header, tt.secret, got)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := platform.Message{ID: "m1", From: "u1", Text: "hello"}
	tests := []struct {
		name   string
		msgs   []platform.Message
		status int
	}{
		{"fine", []platform.Message{ok}, 0},
		{"no sender", []platform.Message{{ID: "m", Text: "hi"}}, 400},
		{"blank text", []platform.Message{{ID: "m", From: "u", Text: "  "}}, 400},
		{"NUL in text", []platform.Message{{ID: "m", From: "u", Text: "a\x00"}}, 400},
		{"invalid UTF-8", []platform.Message{{ID: "m", From: "u", Text: "a\xff"}}, 400},
		{"NUL in id", []platform.Message{{ID: "m\x00", From: "u", Text: "a"}}, 400},
		{"long id", []platform.Message{{ID: strings.Repeat("m", 300), From: "u", Text: "a"}}, 400},
		{"long text", []platform.Message{{ID: "m", From: "u", Text: strings.Repeat("a", ivr.MaxTextBytes+1)}}, 413},
		{"too many", make([]platform.Message, platform.MaxBatch+1), 413},
	}
	for _, tt := range tests {
		err := platform.Validate(tt.msgs)
		status, _ := ivr.HTTPStatus(err)
		if tt.status == 0 {
			status = 0
			if err != nil {
				status = -1
			}
		}
		if status != tt.status {
			t.Fatalf("%s: %v (status %d), want %d", tt.name, err, status, tt.status)
		}
	}
}
