package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// Header names of a delivery to the integrator's webhook URL.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderTimestamp      = "X-Koel-Timestamp"
	HeaderSignature      = "X-Koel-Signature"
	HeaderAttempt        = "X-Koel-Delivery-Attempt"
)

// maxResponseDrain is how much of a receiver's answer is read (and
// discarded) so the connection can be reused.
const maxResponseDrain = 64 << 10

// Sender delivers webhook replies: it POSTs the item's body (the Standard
// Message Format) to the item's URL, or to the connection's current
// webhook URL when the item has none, with an Idempotency-Key, the attempt
// number, a timestamp and, when the connection has a secret key, an
// X-Koel-Signature (see [Sign]). It implements outbox.Sender.
type Sender struct {
	client *http.Client
	now    func() time.Time
	// Metrics counts deliveries the receiver accepted in
	// koel_channel_messages_total{channel="webhook",direction="outbound"}
	// with their latency, and failed attempts by class, as the platform
	// senders do (nil: none).
	Metrics *platform.Metrics
}

// NewSender returns a webhook sender using client, which should not follow
// redirects (nil: [NewClient]). now returns the time (nil: time.Now).
func NewSender(client *http.Client, now func() time.Time) *Sender {
	if client == nil {
		client = NewClient()
	}
	if now == nil {
		now = time.Now
	}
	return &Sender{client: client, now: now}
}

// NewClient returns an HTTP client for webhook deliveries that connects
// anywhere (tests, in-process use); koel serve uses [NewGuardedClient].
func NewClient() *http.Client {
	return newClient((&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
}

// NewGuardedClient returns the HTTP client of webhook deliveries in koel
// serve: every address is checked against policy when connecting (a
// webhook URL cannot reach koel's own network unless allowed).
func NewGuardedClient(policy outbox.DialPolicy) *http.Client { return newClient(policy.Dialer()) }

// newClient: redirects are not followed (a redirect answer is a failed
// attempt), no proxy is used, and up to outbox.DefaultPerConnection
// connections per receiver are kept alive, so concurrent deliveries to one
// integrator reuse connections instead of opening one per reply.
func newClient(dial func(ctx context.Context, network, address string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          4 * outbox.DefaultPerConnection,
			MaxIdleConnsPerHost:   outbox.DefaultPerConnection,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Send implements outbox.Sender.
func (s *Sender) Send(ctx context.Context, conn ivr.Connection, it ivr.OutboxItem) error {
	err := s.send(ctx, conn, it)
	if err != nil {
		s.Metrics.Failed(ivr.ChannelWebhook, outbox.Class(err))
		return err
	}
	s.Metrics.Delivered(ivr.ChannelWebhook, it.CreatedAt, s.now())
	return nil
}

func (s *Sender) send(ctx context.Context, conn ivr.Connection, it ivr.OutboxItem) error {
	target := it.URL
	if target == "" {
		target = conn.Settings.WebhookURL
	}
	if target == "" {
		return outbox.Permanent(outbox.WithClass(outbox.ClassConfig, errors.New("connection has no webhook url")))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(it.Body))
	if err != nil {
		return outbox.Permanent(outbox.WithClass(outbox.ClassConfig, outbox.TransportError("build request for", target, err)))
	}
	ct := it.ContentType
	if ct == "" {
		ct = "application/json"
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "koel-outbox/1")
	req.Header.Set(HeaderIdempotencyKey, it.IdempotencyKey)
	req.Header.Set(HeaderAttempt, strconv.Itoa(it.Attempts+1))
	req.Header.Set(HeaderTimestamp, ts)
	if conn.Settings.SecretKey != "" {
		req.Header.Set(HeaderSignature, Sign(conn.Settings.SecretKey.Reveal(), ts, it.Body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return outbox.TransportError(http.MethodPost, target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
	return outbox.CheckResponse(resp, s.now())
}

// Sign returns the signature header value of a delivery:
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is returned by [Verify] for a wrong, missing or expired
// signature.
var ErrBadSignature = errors.New("webhook: bad signature")

// Verify checks a delivery's signature as a receiver should: the signature
// must match (compared in constant time) and the timestamp must be within
// tolerance of now, so a captured delivery cannot be replayed later.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside tolerance", ErrBadSignature)
	}
	want := Sign(secret, timestamp, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrBadSignature
	}
	return nil
}
