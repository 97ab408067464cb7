package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error classes of a failed attempt, the "class" label of the failure
// metrics.
const (
	ClassTimeout     = "timeout"      // the attempt ran out of time
	ClassNetwork     = "network"      // connecting or reading failed
	ClassRateLimited = "rate_limited" // 429, or a platform's rate-limit code
	ClassServer      = "server"       // 5xx
	ClassClient      = "client"       // 4xx other than 408, 425, 429
	ClassRedirect    = "redirect"     // 3xx (redirects are never followed)
	ClassConfig      = "config"       // no sender, no connection, nowhere to send
	ClassOther       = "other"
)

// classified wraps a sender's error with how the dispatcher treats it.
type classified struct {
	err        error
	permanent  bool
	retryAfter time.Duration
	class      string
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// Permanent marks err as final: the item is dead-lettered at once instead of
// retried (a 4xx that no retry will change, an unknown recipient).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, permanent: true}
}

// RetryAfter marks err as retryable no sooner than d from now: the
// receiver's Retry-After header or a platform's rate-limit answer. The
// delay is honoured even when longer than the usual backoff, but never past
// the retry horizon.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	if d < 0 {
		d = 0
	}
	return &classified{err: err, retryAfter: d, class: ClassRateLimited}
}

// WithClass labels err with one of the Class constants for the failure
// metrics, without changing whether it is retried.
func WithClass(class string, err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, class: class}
}

// IsPermanent reports whether err was marked with [Permanent].
func IsPermanent(err error) bool {
	var c *classified
	for e := err; errors.As(e, &c); e = c.err {
		if c.permanent {
			return true
		}
	}
	return false
}

// RetryDelay returns the delay err asks for with [RetryAfter].
func RetryDelay(err error) (time.Duration, bool) {
	var c *classified
	for e := err; errors.As(e, &c); e = c.err {
		if c.class == ClassRateLimited && !c.permanent {
			return c.retryAfter, true
		}
	}
	return 0, false
}

// StatusError is a receiver's non-2xx answer.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("receiver answered %d", e.Code) }

// Class returns the class of a failed attempt's error.
func Class(err error) string {
	var c *classified
	for e := err; errors.As(e, &c); e = c.err {
		if c.class != "" {
			return c.class
		}
	}
	var se *StatusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		switch {
		case se.Code == http.StatusTooManyRequests:
			return ClassRateLimited
		case se.Code >= 500:
			return ClassServer
		case se.Code >= 400:
			return ClassClient
		case se.Code >= 300:
			return ClassRedirect
		}
		return ClassOther
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout
	case errors.As(err, &ne):
		return ClassNetwork
	}
	return ClassOther
}

// CheckResponse classifies an HTTP answer for a sender: nil for 2xx; 429,
// and 503 with a Retry-After header, are retried after that delay (or the
// usual backoff when there is none); 408, 425, 5xx and 3xx are retried;
// every other 4xx is [Permanent]. It does not read or close the body.
func CheckResponse(resp *http.Response, now time.Time) error {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	err := &StatusError{Code: code}
	switch {
	case code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return RetryAfter(d, err)
		}
		return err
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly:
		return err
	case code >= 400 && code <= 499:
		return Permanent(err)
	}
	return err
}

// MaxRetryAfter caps a Retry-After value, so a hostile receiver cannot park
// an item for years.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter parses a Retry-After header value: delay-seconds or an
// HTTP date, relative to now. It reports false for an empty or malformed
// value; a date in the past is a zero delay.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, 0), MaxRetryAfter), true
}

// RedactURL returns u without its user info and with its query values and
// fragment replaced by "***", for error text and logs: credentials sometimes ride in URLs
// (?api_key=…), and LastError and log lines must never hold one.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "<unparsable url>"
	}
	p.User = nil
	query, fragment := "", ""
	if p.RawQuery != "" {
		q := p.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, url.QueryEscape(k)+"=***")
		}
		slices.Sort(keys)
		query = "?" + strings.Join(keys, "&")
	}
	if p.Fragment != "" {
		fragment = "#***"
	}
	p.RawQuery, p.Fragment, p.RawFragment = "", "", ""
	return p.String() + query + fragment
}

// TransportError describes a failed HTTP round trip without the request's
// URL (a *url.Error's text quotes it in full, query included): "post
// https://host/path?k=***: <cause>".
func TransportError(method, rawURL string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s %s: %w", strings.ToLower(method), RedactURL(rawURL), err)
}
