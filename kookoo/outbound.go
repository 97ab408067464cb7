package kookoo

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultOutboundURL is KooKoo's outbound-call API (§4). The newer platform
// serves the same API at http://in1-cpaas.ozonetel.com/outbound/outbound.php.
const DefaultOutboundURL = "http://www.kookoo.in/outbound/outbound.php"

const (
	// maxReplyBytes caps the outbound API's reply.
	maxReplyBytes = 64 << 10
	// maxExtraDataBytes caps the rendered extra_data XML, which travels in
	// the query string.
	maxExtraDataBytes = 4 << 10
	// defaultOutboundTimeout bounds a call to the API when OutboundConfig
	// has no HTTP client.
	defaultOutboundTimeout = 30 * time.Second
)

// OutboundConfig configures an [OutboundClient].
type OutboundConfig struct {
	// BaseURL is the outbound.php URL; empty means [DefaultOutboundURL].
	BaseURL string
	// APIKey is the account's API key. Secret: it is sent to KooKoo only,
	// never logged and never part of an error.
	APIKey string
	// HTTP is the client used; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Logger receives one line per call, with the number masked; nil
	// discards.
	Logger *slog.Logger
}

// OutboundClient places calls through KooKoo's outbound API (§4). It is
// safe for concurrent use.
type OutboundClient struct {
	base    *url.URL
	baseErr error
	apiKey  string
	http    *http.Client
	log     *slog.Logger
}

// NewOutboundClient returns a client for cfg. A bad BaseURL or a missing
// APIKey is reported by every Call, as an [ErrInvalidOutbound].
func NewOutboundClient(cfg OutboundConfig) *OutboundClient {
	c := &OutboundClient{apiKey: cfg.APIKey, http: cfg.HTTP, log: cfg.Logger}
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultOutboundURL
	}
	if !isHTTPURL(raw) {
		c.baseErr = fmt.Errorf("%w: BaseURL is not an absolute http(s) URL", ErrInvalidOutbound)
	} else {
		c.base, _ = url.Parse(raw) // parsed by isHTTPURL already
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultOutboundTimeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// OutboundRequest is one outbound call (§4).
type OutboundRequest struct {
	// PhoneNo is the number to call. Indian numbers in any common form
	// (+91..., 91..., 10 digits, 0-prefixed) are sent 0-prefixed, as
	// KooKoo wants (see [OutboundNumber]).
	PhoneNo string
	// URL is the application URL KooKoo runs the call against once it is
	// answered (NewCall, then the usual loop).
	URL string
	// ExtraData is the initial XML to run instead of, or before, URL. At
	// least one of URL and ExtraData is required.
	ExtraData *Response
	// CallerID is the number shown to the callee, when the account has
	// several.
	CallerID string
	// CallbackURL receives the end-of-call POST (see [CallbackHandler]).
	CallbackURL string
}

// OutboundError is a failure reported by KooKoo's outbound API, or a reply
// that could not be understood.
type OutboundError struct {
	// Status is the reply's status ("error"), or "" when there was no
	// readable reply.
	Status string
	// Message is KooKoo's message, e.g. "PHONE NUMBER IN DND LIST".
	Message string
	// HTTPStatus is the HTTP status of the reply.
	HTTPStatus int
	// Retryable is true when the same call may succeed later (server
	// errors, throttling, unknown errors) and false when it cannot (DND,
	// calling hours, bad key or number) or when KooKoo may already have
	// queued it (an unreadable 200 reply).
	Retryable bool
}

// Error implements error. Long digit runs in the message (phone numbers)
// are masked.
func (e *OutboundError) Error() string {
	msg := maskDigitRuns(e.Message)
	switch {
	case e.Status != "":
		return fmt.Sprintf("kookoo: outbound call %s: %s", e.Status, msg)
	default:
		return fmt.Sprintf("kookoo: outbound call: HTTP %d: %s", e.HTTPStatus, msg)
	}
}

// Retryable reports whether a failed Call may be retried: an
// [*OutboundError] that says so, or a transport failure (a timeout is
// ambiguous: KooKoo may have queued the call). Cancellation and invalid
// requests are not retryable.
func Retryable(err error) bool {
	var oe *OutboundError
	switch {
	case err == nil:
		return false
	case errors.As(err, &oe):
		return oe.Retryable
	case errors.Is(err, context.Canceled), errors.Is(err, ErrInvalidOutbound):
		return false
	}
	return true
}

// permanentErrors are message fragments of failures a retry cannot fix
// (§4: CCHQ treats the first two as final).
var permanentErrors = []string{
	"DND", "9PM", "NOT BE MADE", "INVALID", "API KEY", "API_KEY", "AUTHENTICAT",
	"NOT ENABLED", "NOT ALLOWED", "BLOCKED", "BALANCE",
}

// Call asks KooKoo to call req.PhoneNo and returns the call's sid, which
// the application's requests and the callback will carry. The request is a
// GET with api_key, phone_no, url and/or extra_data, outbound_version=2,
// caller_id and callback_url. A reply <status>queued</status> gives the sid
// in <message>; anything else is an [*OutboundError]. Invalid requests fail
// with [ErrInvalidOutbound] before anything is sent.
func (c *OutboundClient) Call(ctx context.Context, req OutboundRequest) (string, error) {
	u, err := c.buildURL(req)
	if err != nil {
		return "", err
	}
	masked := MaskNumber(req.PhoneNo)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidOutbound, redactURLError(err))
	}
	hreq.Header.Set("Accept", "application/xml, text/xml")
	resp, err := c.http.Do(hreq)
	if err != nil {
		err = redactURLError(err)
		c.log.WarnContext(ctx, "kookoo outbound call failed", "phone", masked, "err", err)
		return "", fmt.Errorf("kookoo: outbound call: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	xmlTextAndClose, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		err = redactURLError(err)
		c.log.WarnContext(ctx, "kookoo outbound call failed", "phone", masked, "err", err)
		return "", fmt.Errorf("kookoo: outbound call: read reply: %w", err)
	}
	sid, oerr := parseOutboundReply(resp.StatusCode, xmlTextAndClose)
	if oerr != nil {
		c.log.WarnContext(ctx, "kookoo outbound call refused", "phone", masked,
			"http_status", oerr.HTTPStatus, "status", oerr.Status,
			"message", maskDigitRuns(oerr.Message), "retryable", oerr.Retryable)
		return "", oerr
	}
	c.log.InfoContext(ctx, "kookoo outbound call queued", "phone", masked, "sid", sid)
	return sid, nil
}

// buildURL validates req and returns the API URL with its parameters.
func (c *OutboundClient) buildURL(req OutboundRequest) (string, error) {
	if c.baseErr != nil {
		return "", c.baseErr
	}
	if c.apiKey == "" {
		return "", fmt.Errorf("%w: no API key", ErrInvalidOutbound)
	}
	phone, err := OutboundNumber(req.PhoneNo)
	if err != nil {
		return "", err
	}
	q := c.base.Query()
	q.Set("api_key", c.apiKey)
	q.Set("phone_no", phone)
	q.Set("outbound_version", "2")
	if req.URL == "" && req.ExtraData == nil {
		return "", fmt.Errorf("%w: neither url nor extra_data", ErrInvalidOutbound)
	}
	if req.URL != "" {
		if err := checkURL(req.URL); err != nil {
			return "", fmt.Errorf("%w: url: %w", ErrInvalidOutbound, err)
		}
		q.Set("url", req.URL)
	}
	if req.ExtraData != nil {
		if err := req.ExtraData.Validate(); err != nil {
			return "", fmt.Errorf("%w: extra_data: %w", ErrInvalidOutbound, err)
		}
		x := req.ExtraData.Render()
		if len(x) > maxExtraDataBytes {
			return "", fmt.Errorf("%w: %w: extra_data over %d bytes", ErrInvalidOutbound, ErrTooLarge, maxExtraDataBytes)
		}
		q.Set("extra_data", string(x))
	}
	if req.CallerID != "" {
		if !validNumber(req.CallerID) {
			return "", fmt.Errorf("%w: caller_id must be up to %d digits", ErrInvalidOutbound, maxNumberDigits)
		}
		q.Set("caller_id", req.CallerID)
	}
	if req.CallbackURL != "" {
		if err := checkURL(req.CallbackURL); err != nil {
			return "", fmt.Errorf("%w: callback_url: %w", ErrInvalidOutbound, err)
		}
		q.Set("callback_url", req.CallbackURL)
	}
	u := *c.base
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// outboundReply is the API's reply: <response><status>queued</status>
// <message>sid</message></response> (§4).
type outboundReply struct {
	Status  string `xml:"status"`
	Message string `xml:"message"`
}

func parseOutboundReply(code int, xmlTextAndClose []byte) (string, *OutboundError) {
	if len(xmlTextAndClose) > maxReplyBytes {
		return "", &OutboundError{HTTPStatus: code, Message: fmt.Sprintf("reply over %d bytes", maxReplyBytes)}
	}
	if code < 200 || code > 299 {
		return "", &OutboundError{HTTPStatus: code, Message: replySnippet(xmlTextAndClose),
			Retryable: code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout}
	}
	var r outboundReply
	if err := xml.Unmarshal(xmlTextAndClose, &r); err != nil {
		// KooKoo may have queued the call: do not retry blindly.
		return "", &OutboundError{HTTPStatus: code, Message: "unreadable reply: " + replySnippet(xmlTextAndClose)}
	}
	status := strings.ToLower(strings.TrimSpace(r.Status))
	msg := cleanText(strings.TrimSpace(r.Message))
	if status == "queued" {
		if !validSID(msg) {
			return "", &OutboundError{HTTPStatus: code, Status: status, Message: "queued without a valid sid"}
		}
		return msg, nil
	}
	if status == "" {
		return "", &OutboundError{HTTPStatus: code, Message: "unreadable reply (no status): " + replySnippet(xmlTextAndClose)}
	}
	upper := strings.ToUpper(msg)
	retry := true
	for _, p := range permanentErrors {
		if strings.Contains(upper, p) {
			retry = false
			break
		}
	}
	return "", &OutboundError{HTTPStatus: code, Status: truncateForError(cleanText(status)), Message: msg, Retryable: retry}
}

// replySnippet returns the start of a reply body for an error message.
func replySnippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(cleanText(string(b)))
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return s
}

// redactURLError removes the query (API key, phone number) from a
// *url.Error's URL, which net/http puts in the error text.
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	red := *ue
	red.URL = "(redacted)"
	if u, perr := url.Parse(ue.URL); perr == nil {
		u.RawQuery, u.Fragment, u.User = "", "", nil
		red.URL = u.String()
	}
	return &red
}

// OutboundNumber returns the number as KooKoo's outbound API wants it: an
// Indian number with a leading 0 (§4: "097" and eight more digits; CCHQ turns 91 plus ten digits
// into 0 plus ten digits). Spaces, dashes, dots and parentheses are ignored;
// +91, 0091 and 91 prefixes of a 10-digit number are replaced by 0; a bare
// 10-digit number gets a 0; an 11-digit number starting with 0 is kept.
// Anything else is an [ErrInvalidOutbound].
func OutboundNumber(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ', c == '-', c == '.', c == '(', c == ')':
		case c == '+' && b.Len() == 0:
			b.WriteByte(c)
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("%w: phone number has a character other than digits", ErrInvalidOutbound)
		}
		if b.Len() > 2*maxNumberDigits {
			break
		}
	}
	n := b.String()
	switch {
	case strings.HasPrefix(n, "+91") && len(n) == 13:
		n = n[3:]
	case strings.HasPrefix(n, "0091") && len(n) == 14:
		n = n[4:]
	case strings.HasPrefix(n, "91") && len(n) == 12:
		n = n[2:]
	case strings.HasPrefix(n, "0") && len(n) == 11 && n[1] != '0':
		return n, nil
	}
	if len(n) != 10 || !allDigits(n) || n[0] == '0' {
		return "", fmt.Errorf("%w: phone number is not an Indian number (10 digits, +91, 91 or 0 prefixed)", ErrInvalidOutbound)
	}
	return "0" + n, nil
}

// maskDigitRuns masks runs of six or more digits (phone numbers) in s,
// keeping their last four.
func maskDigitRuns(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		if j-i >= 6 {
			b.WriteString(MaskNumber(s[i:j]))
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}
