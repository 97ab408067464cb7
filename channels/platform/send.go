package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// Failure classes of koel_channel_delivery_failures_total: the outbox's
// classes (its log lines use the same words), plus auth.
const (
	ClassRateLimited = outbox.ClassRateLimited // 429 or the platform's rate-limit code: retried
	ClassServer      = outbox.ClassServer      // 5xx, 408, temporary codes: retried
	ClassNetwork     = outbox.ClassNetwork     // no answer: retried
	ClassTimeout     = outbox.ClassTimeout     // no answer in time: retried
	ClassClient      = outbox.ClassClient      // the platform refused the request: final
	ClassConfig      = outbox.ClassConfig      // the connection lacks a setting: final
	ClassAuth        = "auth"                  // credentials refused or missing: final
)

// MaxResponseBody caps how much of a send API's answer is read.
const MaxResponseBody = 64 << 10

// DeliveryError is a failed send attempt, classified. Its message never
// holds credentials: they travel in headers, never in URLs.
type DeliveryError struct {
	Channel ivr.Channel
	// Class is one of the Class constants.
	Class string
	// Status is the HTTP status, 0 when none was received.
	Status int
	// Code is the platform's own error code, when it gave one.
	Code string
	// RetryAfter is the platform's requested wait (Retry-After), 0 when none.
	RetryAfter time.Duration
	// Final is true when retrying cannot help (credentials refused, request
	// refused); the item should be dead-lettered at once.
	Final  bool
	Detail string
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s send %s", e.Channel, e.Class)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (http %d", e.Status)
		if e.Code != "" {
			fmt.Fprintf(&b, ", code %s", e.Code)
		}
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %v", e.RetryAfter)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Retryable reports whether another attempt may succeed.
func (e *DeliveryError) Retryable() bool { return !e.Final }

// Classify is a platform's reading of a non-2xx answer: its own error code,
// whether that code means "rate limited" or "temporary" whatever the HTTP
// status (class, "" for the status's), and how long the platform asks to
// wait when it says so other than with Retry-After (0 for no hint). A nil
// Classify uses the status and Retry-After alone.
type Classify func(status int, header http.Header, body []byte) (code, class string, wait time.Duration)

// StatusClass classifies by HTTP status alone.
func StatusClass(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusRequestTimeout || status >= 500:
		return ClassServer
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ClassAuth
	default:
		return ClassClient
	}
}

// Sender posts platform requests for the channel senders and records the
// outcome in the metrics.
type Sender struct {
	Client  *http.Client
	Metrics *Metrics
	// Now returns the time (nil: time.Now).
	Now func() time.Time
	// Timeout bounds one request (0: 10 s).
	Timeout time.Duration
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Post sends req for item on channel ch. It returns nil when the platform
// accepted the request (2xx), otherwise a *DeliveryError marked for the
// outbox: [outbox.Permanent] when final, [outbox.RetryAfter] when the
// platform asked for a delay, classed with [outbox.WithClass] otherwise.
func (s *Sender) Post(ctx context.Context, ch ivr.Channel, item ivr.OutboxItem, req *http.Request, classify Classify) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("User-Agent", "koel/1")
	if item.IdempotencyKey != "" && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", item.IdempotencyKey)
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		derr := &DeliveryError{Channel: ch, Class: ClassNetwork, Detail: transportDetail(req, err)}
		if errors.Is(err, context.DeadlineExceeded) {
			derr.Class = ClassTimeout
		}
		s.Metrics.Failed(ch, derr.Class)
		return outbox.WithClass(derr.Class, derr)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		s.Metrics.Delivered(ch, item.CreatedAt, s.now())
		return nil
	}
	derr := &DeliveryError{Channel: ch, Status: resp.StatusCode, Class: StatusClass(resp.StatusCode)}
	var hint time.Duration
	if classify != nil {
		code, class, wait := classify(resp.StatusCode, resp.Header, body)
		derr.Code, hint = code, wait
		if class != "" {
			derr.Class = class
		}
	}
	derr.Final = derr.Class == ClassAuth || derr.Class == ClassClient
	if derr.Class == ClassRateLimited || derr.Class == ClassServer {
		derr.RetryAfter, _ = outbox.ParseRetryAfter(resp.Header.Get("Retry-After"), s.now())
		if derr.RetryAfter == 0 && hint > 0 {
			derr.RetryAfter = min(hint, outbox.MaxRetryAfter)
		}
	}
	derr.Detail = fmt.Sprintf("%s %s", req.Method, req.URL.Path)
	s.Metrics.Failed(ch, derr.Class)
	switch {
	case derr.Final:
		return outbox.Permanent(outbox.WithClass(derr.Class, derr))
	case derr.RetryAfter > 0:
		// RetryAfter classes it rate_limited itself; an outer WithClass
		// would hide the delay from the dispatcher.
		return outbox.RetryAfter(derr.RetryAfter, derr)
	}
	return outbox.WithClass(derr.Class, derr)
}

// transportDetail describes a transport failure without the URL's query
// (which never holds credentials here, but may hold user data).
func transportDetail(req *http.Request, err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Sprintf("%s %s%s: %v", req.Method, req.URL.Host, req.URL.Path, err)
}

// NewRequest builds a send request: base URL joined with path.
func NewRequest(base, path string, body []byte, contentType string) (*http.Request, error) {
	u, err := JoinURL(base, path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build send request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// JoinURL joins an http(s) base URL and an absolute path.
func JoinURL(base, path string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("platform: base URL %q is not an http(s) URL", redactURL(base))
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return u.String() + path, nil
}

func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#@"); i >= 0 {
		return s[:i] + "…"
	}
	return s
}

// Or returns v, or def when v is empty.
func Or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
