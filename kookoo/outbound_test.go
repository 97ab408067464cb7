package kookoo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const testAPIKey = "KKsecret0123456789"

// fakeOutbound is a local stand-in for KooKoo's outbound.php. The reply
// depends on the number called.
type fakeOutbound struct {
	t       *testing.T
	got     chan url.Values // every request's query
	arrived chan struct{}   // closed-over signal for the blocking case
}

func newFakeOutbound(t *testing.T) (*fakeOutbound, *httptest.Server) {
	f := &fakeOutbound{t: t, got: make(chan url.Values, 16), arrived: make(chan struct{}, 1)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeOutbound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.got <- q
	if q.Get("api_key") != testAPIKey {
		xmlReply(w, http.StatusOK, "error", "INVALID API KEY")
		return
	}
	switch q.Get("phone_no") {
	case "09000000001":
		xmlReply(w, http.StatusOK, "queued", "21275806501458167")
	case "09000000002":
		xmlReply(w, http.StatusOK, "error", "some big error message")
	case "09000000003":
		xmlReply(w, http.StatusOK, "error", "PHONE NUMBER IN DND LIST")
	case "09000000004":
		xmlReply(w, http.StatusOK, "error", "CALLS WILL NOT BE MADE BETWEEN 9PM TO 9AM.")
	case "09000000005":
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<html><body>Welcome to KooKoo</body></html>"))
	case "09000000006":
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("Bad Gateway"))
	case "09000000007":
		xmlReply(w, http.StatusOK, "queued", "")
	case "09000000008":
		f.arrived <- struct{}{}
		<-r.Context().Done() // hold the reply until the client gives up
	case "09000000009":
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(bytes.Repeat([]byte("<response>"), maxReplyBytes))
	default:
		xmlReply(w, http.StatusOK, "error", "unexpected number")
	}
}

func xmlReply(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(code)
	_, _ = w.Write([]byte("<response><status>" + status + "</status><message>" + msg + "</message></response>"))
}

func TestOutboundCallParameters(t *testing.T) {
	fake, srv := newFakeOutbound(t)
	c := NewOutboundClient(OutboundConfig{BaseURL: srv.URL + "/outbound/outbound.php", APIKey: testAPIKey, HTTP: srv.Client()})
	sid, err := c.Call(context.Background(), OutboundRequest{
		PhoneNo:     "+91 90000 00001",
		URL:         "https://koel.example/kookoo/demo",
		ExtraData:   &Response{Verbs: []Verb{PlayText{Text: "Hello & welcome"}}},
		CallerID:    "918065740671",
		CallbackURL: "https://koel.example/kookoo/demo/finished",
	})
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if sid != "21275806501458167" {
		t.Errorf("sid = %q", sid)
	}
	q := <-fake.got
	want := url.Values{
		"api_key":          {testAPIKey},
		"phone_no":         {"09000000001"},
		"outbound_version": {"2"},
		"url":              {"https://koel.example/kookoo/demo"},
		"extra_data":       {"<response><playtext>Hello &amp; welcome</playtext></response>"},
		"caller_id":        {"918065740671"},
		"callback_url":     {"https://koel.example/kookoo/demo/finished"},
	}
	if q.Encode() != want.Encode() {
		t.Errorf("query\n got %s\nwant %s", q.Encode(), want.Encode())
	}
}

func TestOutboundCallReplies(t *testing.T) {
	_, srv := newFakeOutbound(t)
	tests := []struct {
		name       string
		key, phone string
		wantStatus string
		wantMsg    string
		retryable  bool
	}{
		{"error", testAPIKey, "9000000002", "error", "some big error message", true},
		{"DND", testAPIKey, "9000000003", "error", "PHONE NUMBER IN DND LIST", false},
		{"calling hours", testAPIKey, "9000000004", "error", "CALLS WILL NOT BE MADE BETWEEN 9PM TO 9AM.", false},
		{"bad key", "KKwrong", "9000000001", "error", "INVALID API KEY", false},
		{"non-XML 200", testAPIKey, "9000000005", "", "unreadable reply", false},
		{"502", testAPIKey, "9000000006", "", "Bad Gateway", true},
		{"queued without sid", testAPIKey, "9000000007", "queued", "without a valid sid", false},
		{"reply too large", testAPIKey, "9000000009", "", "reply over", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewOutboundClient(OutboundConfig{BaseURL: srv.URL, APIKey: tt.key, HTTP: srv.Client()})
			sid, err := c.Call(context.Background(), OutboundRequest{PhoneNo: tt.phone, URL: "https://koel.example/k"})
			var oe *OutboundError
			if !errors.As(err, &oe) {
				t.Fatalf("Call = %q, %v; want *OutboundError", sid, err)
			}
			if oe.Status != tt.wantStatus || !strings.Contains(oe.Message, tt.wantMsg) || oe.Retryable != tt.retryable {
				t.Errorf("got %+v, want status %q, message ~%q, retryable %v", oe, tt.wantStatus, tt.wantMsg, tt.retryable)
			}
			if Retryable(err) != tt.retryable {
				t.Errorf("Retryable(err) = %v", Retryable(err))
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Errorf("error leaks the API key: %v", err)
			}
		})
	}
}

// deadlineCtx is a context whose deadline passes when expire is closed, so
// the test decides when the timeout happens.
type deadlineCtx struct {
	context.Context
	expire chan struct{}
}

func (c deadlineCtx) Done() <-chan struct{} { return c.expire }

func (c deadlineCtx) Err() error {
	select {
	case <-c.expire:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func TestOutboundCallTimeoutAndCancel(t *testing.T) {
	fake, srv := newFakeOutbound(t)
	var logs bytes.Buffer
	c := NewOutboundClient(OutboundConfig{BaseURL: srv.URL, APIKey: testAPIKey, HTTP: srv.Client(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	t.Run("deadline", func(t *testing.T) {
		ctx := deadlineCtx{Context: context.Background(), expire: make(chan struct{})}
		go func() {
			<-fake.arrived
			close(ctx.expire)
		}()
		_, err := c.Call(ctx, OutboundRequest{PhoneNo: "9000000008", URL: "https://koel.example/k"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if !Retryable(err) {
			t.Error("a timeout should be retryable")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-fake.arrived
			cancel()
		}()
		_, err := c.Call(ctx, OutboundRequest{PhoneNo: "9000000008", URL: "https://koel.example/k"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want Canceled", err)
		}
		if Retryable(err) {
			t.Error("a cancelled call should not be retryable")
		}
		if strings.Contains(err.Error(), testAPIKey) {
			t.Errorf("error leaks the API key: %v", err)
		}
	})
	if strings.Contains(logs.String(), testAPIKey) || strings.Contains(logs.String(), "9000000008") {
		t.Errorf("log leaks the key or the number:\n%s", logs.String())
	}
}

func TestOutboundTransportErrorRedactsKey(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	var logs bytes.Buffer
	c := NewOutboundClient(OutboundConfig{BaseURL: base, APIKey: testAPIKey,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	_, err := c.Call(context.Background(), OutboundRequest{PhoneNo: "9704665032", URL: "https://koel.example/k"})
	if err == nil {
		t.Fatal("Call to a closed server succeeded")
	}
	if !Retryable(err) {
		t.Errorf("connection refused should be retryable: %v", err)
	}
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, testAPIKey) || strings.Contains(s, "9704665032") {
			t.Errorf("leak in %q", s)
		}
	}
}

func TestOutboundInvalidRequests(t *testing.T) {
	ok := OutboundRequest{PhoneNo: "9704665032", URL: "https://koel.example/k"}
	tests := []struct {
		name string
		cfg  OutboundConfig
		req  OutboundRequest
	}{
		{"no api key", OutboundConfig{}, ok},
		{"bad base URL", OutboundConfig{APIKey: "k", BaseURL: "ftp://x"}, ok},
		{"no url nor extra_data", OutboundConfig{APIKey: "k"}, OutboundRequest{PhoneNo: "9704665032"}},
		{"bad url", OutboundConfig{APIKey: "k"}, OutboundRequest{PhoneNo: "9704665032", URL: "koel/k"}},
		{"bad number", OutboundConfig{APIKey: "k"}, OutboundRequest{PhoneNo: "12345", URL: "https://a/"}},
		{"invalid extra_data", OutboundConfig{APIKey: "k"}, OutboundRequest{PhoneNo: "9704665032", ExtraData: &Response{Verbs: []Verb{Hangup{}, PlayText{Text: "x"}}}}},
		{"huge extra_data", OutboundConfig{APIKey: "k"}, OutboundRequest{PhoneNo: "9704665032", ExtraData: &Response{Verbs: []Verb{PlayText{Text: strings.Repeat("a", MaxTextBytes)}, PlayText{Text: "b"}}}}},
		{"bad caller id", OutboundConfig{APIKey: "k"}, OutboundRequest{PhoneNo: "9704665032", URL: "https://a/", CallerID: "koel"}},
		{"bad callback url", OutboundConfig{APIKey: "k"}, OutboundRequest{PhoneNo: "9704665032", URL: "https://a/", CallbackURL: "mailto:x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No server: an invalid request must fail before sending.
			tt.cfg.HTTP = &http.Client{Transport: failTransport{t}}
			_, err := NewOutboundClient(tt.cfg).Call(context.Background(), tt.req)
			if !errors.Is(err, ErrInvalidOutbound) {
				t.Fatalf("err = %v, want ErrInvalidOutbound", err)
			}
			if Retryable(err) {
				t.Error("invalid request reported retryable")
			}
		})
	}
}

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.t.Error("request sent for an invalid call")
	return nil, errors.New("not sent")
}

func TestOutboundNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"9704665032", "09704665032"},
		{"09704665032", "09704665032"},
		{"919704665032", "09704665032"},
		{"+919704665032", "09704665032"},
		{"+91 97046 65032", "09704665032"},
		{"0091-9704665032", "09704665032"},
		{"(080) 4116-9706", "08041169706"},
		{"", ""},
		{"12345", ""},
		{"+14155550100", ""},
		{"00704665032", ""},
		{"97046x5032", ""},
		{"9+704665032", ""},
	}
	for _, tt := range tests {
		got, err := OutboundNumber(tt.in)
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidOutbound) {
				t.Errorf("OutboundNumber(%q) = %q, %v; want ErrInvalidOutbound", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("OutboundNumber(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestOutboundErrorMasksNumbers(t *testing.T) {
	e := &OutboundError{Status: "error", Message: "PHONE NUMBER 09704665032 IN DND LIST"}
	if got := e.Error(); strings.Contains(got, "09704665032") || !strings.Contains(got, "5032") {
		t.Errorf("Error() = %q", got)
	}
}
