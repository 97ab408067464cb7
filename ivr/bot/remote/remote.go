// Package remote forwards user messages to an external bot that speaks the
// Rasa REST-webhook format: koel POSTs {"sender": ..., "message": ...} and the
// bot answers with a JSON list of messages
// [{"recipient_id": ..., "text": ..., "buttons": [{"title", "payload"}], "image": ...}].
//
// See https://rasa.com/docs/rasa/connectors/your-own-website#rest-channels.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr/bot"
)

// Defaults of [Config].
const (
	// DefaultTimeout bounds one attempt when Config.Timeout is zero.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxResponseBytes caps a response body when
	// Config.MaxResponseBytes is zero.
	DefaultMaxResponseBytes = 1 << 20
	// MaxMessages is the most messages kept from one response; the rest
	// are dropped.
	MaxMessages = 20
	// MaxQuickReplies is the most buttons kept per message.
	MaxQuickReplies = 10
	// MaxTextBytes caps the user text sent to the bot.
	MaxTextBytes = 4096
)

// Errors of the remote bot. Every failure of Reply also wraps
// [bot.ErrUnavailable].
var (
	// ErrBadResponse means the bot answered 2xx with a body that is not a
	// Rasa message list, or one larger than the limit.
	ErrBadResponse = errors.New("remote: bad response")
	// ErrStatus means the bot answered a non-2xx status; the error text
	// carries the code.
	ErrStatus = errors.New("remote: unexpected status")
	// ErrNoSender means the request had no UserID to send as "sender".
	ErrNoSender = errors.New("remote: request has no user id")
)

// Config configures a remote [Bot].
type Config struct {
	// URL is the bot's REST webhook, e.g.
	// http://localhost:5005/webhooks/rest/webhook. It may carry a token in
	// its query; it is never logged, only its host is.
	URL string
	// Timeout bounds each attempt (the retry gets its own); zero means
	// DefaultTimeout. The caller's context deadline still applies.
	Timeout time.Duration
	// Client sends the requests; nil means a client with no overall
	// timeout (the per-attempt Timeout applies through the context).
	Client *http.Client
	// Logger receives warnings about failed attempts; nil discards.
	Logger *slog.Logger
	// MaxResponseBytes caps the response body; zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Bot is a [bot.Bot] backed by an external Rasa-compatible bot. It is safe
// for concurrent use.
type Bot struct {
	url     string
	host    string
	timeout time.Duration
	client  *http.Client
	log     *slog.Logger
	maxBody int64
}

var _ bot.Bot = (*Bot)(nil)

// New validates cfg and returns the bot.
func New(cfg Config) (*Bot, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("remote: invalid url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("remote: url scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("remote: url has no host")
	}
	if cfg.Timeout < 0 || cfg.MaxResponseBytes < 0 {
		return nil, errors.New("remote: negative Timeout or MaxResponseBytes")
	}
	b := &Bot{
		url:     u.String(),
		host:    u.Host,
		timeout: cfg.Timeout,
		client:  cfg.Client,
		log:     cfg.Logger,
		maxBody: cfg.MaxResponseBytes,
	}
	if b.timeout == 0 {
		b.timeout = DefaultTimeout
	}
	if b.client == nil {
		b.client = &http.Client{}
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.maxBody == 0 {
		b.maxBody = DefaultMaxResponseBytes
	}
	return b, nil
}

// request is the Rasa REST-webhook request body.
type request struct {
	Sender  string `json:"sender"`
	Message string `json:"message"`
}

// Reply sends req.Text as req.UserID and maps the bot's messages to a
// [bot.Response]: each message with text becomes a [bot.Message] whose
// QuickReplies are its buttons' titles; buttons without text join the
// previous message; an image becomes a message holding its URL on text
// channels and is dropped for voice. An empty list gives Fallback with no
// messages, for the engine to fill in. Node and Confidence stay empty: the
// REST channel reports neither.
//
// A network error, a timeout or a 5xx status is retried once, at once; a 4xx
// status or a malformed body is not. Every error wraps [bot.ErrUnavailable].
func (b *Bot) Reply(ctx context.Context, req bot.Request) (bot.Response, error) {
	if req.UserID == "" {
		return bot.Response{}, fmt.Errorf("%w: %w", bot.ErrUnavailable, ErrNoSender)
	}
	text := req.Text
	if len(text) > MaxTextBytes {
		text = truncateUTF8(text, MaxTextBytes)
	}
	body, err := json.Marshal(request{Sender: req.UserID, Message: text})
	if err != nil {
		return bot.Response{}, fmt.Errorf("%w: remote: encode request: %w", bot.ErrUnavailable, err)
	}
	var lastErr error
	for attempt := 1; attempt <= 2; attempt++ {
		resp, retry, err := b.attempt(ctx, body, req.Voice)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		b.log.LogAttrs(ctx, slog.LevelWarn, "remote bot attempt failed",
			slog.String("host", b.host), slog.Int("attempt", attempt),
			slog.Bool("retry", retry && attempt == 1), slog.Any("error", err))
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return bot.Response{}, fmt.Errorf("%w: %w", bot.ErrUnavailable, lastErr)
}

// attempt makes one request. retry reports whether a failure is worth
// another attempt.
func (b *Bot) attempt(ctx context.Context, body []byte, voice bool) (resp bot.Response, retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, b.url, bytes.NewReader(body))
	if err != nil {
		return bot.Response{}, false, fmt.Errorf("remote: build request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hresp, err := b.client.Do(hreq)
	if err != nil {
		// The URL may hold a token: report the cause without it.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return bot.Response{}, isRetryable(ctx, err), fmt.Errorf("remote: post to %s: %w", b.host, err)
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, b.maxBody+1))
	if err != nil {
		return bot.Response{}, isRetryable(ctx, err), fmt.Errorf("remote: read response from %s: %w", b.host, err)
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		return bot.Response{}, hresp.StatusCode >= 500, fmt.Errorf("%w: %d from %s", ErrStatus, hresp.StatusCode, b.host)
	}
	if int64(len(data)) > b.maxBody {
		return bot.Response{}, false, fmt.Errorf("%w: body larger than %d bytes", ErrBadResponse, b.maxBody)
	}
	resp, err = parseResponse(data, voice)
	if err != nil {
		return bot.Response{}, false, err
	}
	return resp, false, nil
}

// isRetryable reports whether a transport error (connection refused or
// reset, a timeout of the attempt) deserves a second attempt: yes, unless the
// caller's own context is done.
func isRetryable(ctx context.Context, _ error) bool {
	return ctx.Err() == nil
}

// rasaMessage is one element of a Rasa REST-webhook response.
type rasaMessage struct {
	RecipientID string       `json:"recipient_id"`
	Text        string       `json:"text"`
	Image       string       `json:"image"`
	Buttons     []rasaButton `json:"buttons"`
}

// rasaButton is a Rasa button; its title is what the user sees and says.
type rasaButton struct {
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// parseResponse maps a Rasa response body to a bot.Response.
func parseResponse(data []byte, voice bool) (bot.Response, error) {
	var msgs []rasaMessage
	if err := json.Unmarshal(data, &msgs); err != nil {
		return bot.Response{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	var out []bot.Message
	for _, m := range msgs {
		if len(out) == MaxMessages {
			break
		}
		text := strings.TrimSpace(m.Text)
		var replies []string
		for _, btn := range m.Buttons {
			if t := strings.TrimSpace(btn.Title); t != "" && len(replies) < MaxQuickReplies {
				replies = append(replies, t)
			}
		}
		switch {
		case text != "":
			out = append(out, bot.Message{Text: text, QuickReplies: replies})
		case len(replies) > 0 && len(out) > 0:
			last := &out[len(out)-1]
			last.QuickReplies = append(last.QuickReplies, replies...)
			if len(last.QuickReplies) > MaxQuickReplies {
				last.QuickReplies = last.QuickReplies[:MaxQuickReplies]
			}
		case len(replies) > 0:
			out = append(out, bot.Message{QuickReplies: replies})
		}
		if img := strings.TrimSpace(m.Image); img != "" && !voice && len(out) < MaxMessages {
			out = append(out, bot.Message{Text: img})
		}
	}
	if len(out) == 0 {
		return bot.Response{Fallback: true}, nil
	}
	return bot.Response{Messages: out}, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
