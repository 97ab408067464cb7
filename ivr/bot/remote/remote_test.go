package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/koelvoice/koel/ivr/bot"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		voice bool
		want  bot.Response
	}{
		{
			name: "text and buttons",
			body: `[{"recipient_id":"u1","text":"Pick one","buttons":[{"title":"Yes","payload":"/affirm"},{"title":" No ","payload":"/deny"},{"title":"","payload":"/x"}]},
			        {"recipient_id":"u1","text":"Or ask me anything."}]`,
			want: bot.Response{Messages: []bot.Message{
				{Text: "Pick one", QuickReplies: []string{"Yes", "No"}},
				{Text: "Or ask me anything."},
			}},
		},
		{
			name: "buttons without text join the previous message",
			body: `[{"text":"Menu"},{"buttons":[{"title":"Orders"}]}]`,
			want: bot.Response{Messages: []bot.Message{{Text: "Menu", QuickReplies: []string{"Orders"}}}},
		},
		{
			name: "image kept on text channels",
			body: `[{"text":"Here is the map"},{"image":"https://example.com/map.png"}]`,
			want: bot.Response{Messages: []bot.Message{{Text: "Here is the map"}, {Text: "https://example.com/map.png"}}},
		},
		{
			name:  "image dropped for voice",
			body:  `[{"text":"Here is the map"},{"image":"https://example.com/map.png"}]`,
			voice: true,
			want:  bot.Response{Messages: []bot.Message{{Text: "Here is the map"}}},
		},
		{name: "empty list is a fallback", body: `[]`, want: bot.Response{Fallback: true}},
		{name: "null is a fallback", body: `null`, want: bot.Response{Fallback: true}},
		{name: "only blank or unknown elements is a fallback", body: `[{"text":"  "},{"custom":{"a":1}}]`, want: bot.Response{Fallback: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResponse([]byte(tt.body), tt.voice)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{``, `{}`, `{"text":"hi"}`, `[{"text":5}]`, `[1,2]`, `"hello"`, `[{"buttons":"x"}]`} {
		if _, err := parseResponse([]byte(bad), false); !errors.Is(err, ErrBadResponse) {
			t.Errorf("parseResponse(%q) err = %v, want ErrBadResponse", bad, err)
		}
	}
}

func TestParseResponseLimits(t *testing.T) {
	var msgs []map[string]any
	for range MaxMessages + 5 {
		var buttons []map[string]string
		for range MaxQuickReplies + 3 {
			buttons = append(buttons, map[string]string{"title": "b"})
		}
		msgs = append(msgs, map[string]any{"text": "t", "buttons": buttons})
	}
	data, _ := json.Marshal(msgs)
	got, err := parseResponse(data, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != MaxMessages || len(got.Messages[0].QuickReplies) != MaxQuickReplies {
		t.Errorf("got %d messages with %d quick replies, want %d and %d",
			len(got.Messages), len(got.Messages[0].QuickReplies), MaxMessages, MaxQuickReplies)
	}
}

// FuzzParseResponse checks that any body either parses into messages
// within the limits or fails with ErrBadResponse.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`[{"recipient_id":"u","text":"hi","buttons":[{"title":"a","payload":"/a"}]}]`), false)
	f.Add([]byte(`[{"image":"http://x/y.png"},{"buttons":[{"title":"b"}]}]`), true)
	f.Add([]byte(`[]`), false)
	f.Add([]byte(`null`), false)
	f.Add([]byte(`[{"text":"\ud800"}]`), false)
	f.Fuzz(func(t *testing.T, data []byte, voice bool) {
		got, err := parseResponse(data, voice)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v does not wrap ErrBadResponse", err)
			}
			return
		}
		if got.Fallback != (len(got.Messages) == 0) {
			t.Fatalf("fallback %v with %d messages", got.Fallback, len(got.Messages))
		}
		if len(got.Messages) > MaxMessages {
			t.Fatalf("%d messages", len(got.Messages))
		}
		for _, m := range got.Messages {
			if m.Text == "" && len(m.QuickReplies) == 0 {
				t.Fatal("empty message")
			}
			if len(m.QuickReplies) > MaxQuickReplies {
				t.Fatalf("%d quick replies", len(m.QuickReplies))
			}
		}
	})
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{URL: ""},
		{URL: "ftp://bot/webhook"},
		{URL: "http://"},
		{URL: "://bad"},
		{URL: "http://bot/webhook", Timeout: -1},
		{URL: "http://bot/webhook", MaxResponseBytes: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
	if _, err := New(Config{URL: "https://bot.example.com/webhooks/rest/webhook"}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

// rasaServer is a fake Rasa REST webhook. Each call runs the next handler of
// steps (the last one repeats) and is counted.
type rasaServer struct {
	*httptest.Server
	calls atomic.Int32
	got   chan request
}

func newRasaServer(t *testing.T, steps ...http.HandlerFunc) *rasaServer {
	t.Helper()
	s := &rasaServer{got: make(chan request, 10)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.calls.Add(1))
		var req request
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad method or content type", http.StatusTeapot)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.got <- req
		steps[min(n, len(steps))-1](w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func reply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// hang blocks until the client gives up on the request.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// drop closes the connection without answering.
func drop(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestReply(t *testing.T) {
	const ok = `[{"recipient_id":"caller-1","text":"Hi there","buttons":[{"title":"Orders","payload":"/orders"}]}]`
	tests := []struct {
		name      string
		steps     []http.HandlerFunc
		wantCalls int32
		wantErr   error // nil for success
	}{
		{"success", []http.HandlerFunc{reply(ok)}, 1, nil},
		{"5xx then success", []http.HandlerFunc{status(502), reply(ok)}, 2, nil},
		{"timeout then success", []http.HandlerFunc{hang, reply(ok)}, 2, nil},
		{"dropped connection then success", []http.HandlerFunc{drop, reply(ok)}, 2, nil},
		{"5xx twice", []http.HandlerFunc{status(503)}, 2, ErrStatus},
		{"4xx is not retried", []http.HandlerFunc{status(404)}, 1, ErrStatus},
		{"malformed body is not retried", []http.HandlerFunc{reply(`{"oops":true}`)}, 1, ErrBadResponse},
		{"oversized body is not retried", []http.HandlerFunc{reply(`[{"text":"` + strings.Repeat("x", 2000) + `"}]`)}, 1, ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRasaServer(t, tt.steps...)
			b, err := New(Config{URL: srv.URL + "/webhooks/rest/webhook?token=s3cret", Timeout: 500 * time.Millisecond, MaxResponseBytes: 1000})
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.Reply(context.Background(), bot.Request{BusinessID: 1, UserID: "caller-1", Text: "hello", ConversationID: 9})
			if n := srv.calls.Load(); n != tt.wantCalls {
				t.Errorf("%d calls, want %d", n, tt.wantCalls)
			}
			if req := <-srv.got; req != (request{Sender: "caller-1", Message: "hello"}) {
				t.Errorf("bot received %+v", req)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, bot.ErrUnavailable) {
					t.Fatalf("err = %v, want %v wrapped with bot.ErrUnavailable", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error leaks the URL's token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reply: %v", err)
			}
			want := bot.Response{Messages: []bot.Message{{Text: "Hi there", QuickReplies: []string{"Orders"}}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplyNoRetryWhenCallerGivesUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := newRasaServer(t, func(w http.ResponseWriter, r *http.Request) {
		cancel() // the caller gives up while the bot is thinking
		<-r.Context().Done()
	})
	b, err := New(Config{URL: srv.URL, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Reply(ctx, bot.Request{UserID: "u", Text: "hi"})
	if !errors.Is(err, bot.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("%d calls, want 1 (no retry after the caller gave up)", n)
	}
}

func TestReplyNetworkDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	var logs bytes.Buffer
	b, err := New(Config{URL: url + "/hook?token=s3cret", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Reply(context.Background(), bot.Request{UserID: "u", Text: "hi"})
	if !errors.Is(err, bot.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if got := strings.Count(logs.String(), "remote bot attempt failed"); got != 2 {
		t.Errorf("%d failed attempts logged, want 2 (one retry)", got)
	}
	if strings.Contains(logs.String(), "s3cret") || strings.Contains(err.Error(), "s3cret") {
		t.Error("the URL's token leaked into logs or errors")
	}
}

func TestReplyRequiresSender(t *testing.T) {
	b, err := New(Config{URL: "http://127.0.0.1:1/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reply(context.Background(), bot.Request{Text: "hi"}); !errors.Is(err, ErrNoSender) || !errors.Is(err, bot.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrNoSender and ErrUnavailable", err)
	}
}

func TestReplyTruncatesLongText(t *testing.T) {
	srv := newRasaServer(t, reply(`[]`))
	b, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", MaxTextBytes) // 2 bytes each
	got, err := b.Reply(context.Background(), bot.Request{UserID: "u", Text: long})
	if err != nil || !got.Fallback {
		t.Fatalf("got %+v, %v; want fallback", got, err)
	}
	req := <-srv.got
	if len(req.Message) != MaxTextBytes || !strings.HasPrefix(long, req.Message) {
		t.Errorf("sent %d bytes, want the first %d", len(req.Message), MaxTextBytes)
	}
}
