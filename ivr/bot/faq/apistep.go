package faq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// APIStep declares a call of the business's own REST API made by a FAQ
// node once it has collected one value from the user (an order number):
//
//	method: GET
//	url: https://orders.example.com/v1/orders/{{.value}}
//	headers: {Authorization: "Bearer ${SHOP_API_TOKEN}"}
//	body: '{"order_id": {{json .value}}}'
//	reply: "Your order {{.order.id}} is {{.order.status}}."
//
// In URL the value is path-escaped, in Body JSON-encoded with the json
// function; a header value's ${NAME} is read from the environment when the
// call is made (so the declaration holds no secret). Reply is a
// text/template over the decoded JSON answer.
type APIStep struct {
	Method  string            `yaml:"method" json:"method"`
	URL     string            `yaml:"url" json:"url"`
	Headers map[string]string `yaml:"headers" json:"headers"`
	Body    string            `yaml:"body" json:"body"`
	Reply   string            `yaml:"reply" json:"reply"`
	// NotFound answers a 4xx ("" = DefaultNotFound).
	NotFound string `yaml:"not_found" json:"not_found"`
	// Timeout bounds the call (0 = DefaultAPITimeout); it is cut to fit
	// inside the caller's deadline.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// MaxDigits is the most keys a voice caller may press for the value
	// (KooKoo collectdtmf l; 0 = DefaultCollectDigits).
	MaxDigits int `yaml:"max_digits" json:"max_digits,omitempty"`
}

// API step defaults and caps.
const (
	DefaultNotFound   = "I could not find that order"
	DefaultAPITimeout = 2 * time.Second
	// MaxAPIResponseBytes caps the answer read from a business API.
	MaxAPIResponseBytes = 1 << 20
	// MaxAPIValueBytes caps the value a user gives.
	MaxAPIValueBytes = 256
	// DefaultCollectDigits and MaxCollectDigits bound the keys a voice
	// caller may press for a value.
	DefaultCollectDigits = 10
	MaxCollectDigits     = 20
)

// APIOutcome is how an API step ended.
type APIOutcome string

// Outcomes of [APICaller.Call].
const (
	APIAnswered APIOutcome = "answered"  // 2xx, the reply rendered
	APINotFound APIOutcome = "not_found" // 4xx: the NotFound reply
	APIFailed   APIOutcome = "failed"    // timeout, 5xx, refused, garbage: the break message
)

// safeValue is what a collected value may hold: an id, not a path.
var safeValue = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Validate checks a declaration before it is stored or used.
func (s APIStep) Validate() error {
	switch strings.ToUpper(s.Method) {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return fmt.Errorf("api step: method %q: want GET, POST, PUT, PATCH or DELETE", s.Method)
	}
	u, err := url.Parse(strings.ReplaceAll(s.URL, "{{.value}}", "v"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("api step: url must be an absolute http(s) URL")
	}
	if envRef.MatchString(s.URL) {
		return errors.New("api step: secrets belong in headers, not in the url")
	}
	for _, t := range []struct{ name, text string }{{"url", s.URL}, {"body", s.Body}, {"reply", s.Reply}} {
		if _, err := newTemplate(t.name, t.text); err != nil {
			return fmt.Errorf("api step: %s template: %w", t.name, err)
		}
	}
	if s.Reply == "" {
		return errors.New("api step: reply template is empty")
	}
	if s.MaxDigits < 0 || s.MaxDigits > MaxCollectDigits {
		return fmt.Errorf("api step: max_digits %d outside 0-%d", s.MaxDigits, MaxCollectDigits)
	}
	return nil
}

// CollectDigits is the most keys a voice caller may press for the value.
func (s APIStep) CollectDigits() int {
	if s.MaxDigits <= 0 || s.MaxDigits > MaxCollectDigits {
		return DefaultCollectDigits
	}
	return s.MaxDigits
}

// spokenDigits maps the words a caller says for digits.
var spokenDigits = map[string]string{
	"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "to": "2", "too": "2", "three": "3",
	"four": "4", "for": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}

// CollectedValue returns the value a user's message gives for an API
// step: the message itself when it is one id ("1042", "BL-1042"), else the
// digits it holds, spoken or written ("my order is one zero four two" and
// "order 1042 please" give "1042"). A message with no digits is returned
// trimmed (the step then answers its not-found reply).
func CollectedValue(text string) string {
	text = strings.TrimSpace(text)
	if safeValue.MatchString(text) {
		return text
	}
	var digits strings.Builder
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		switch d, ok := spokenDigits[w]; {
		case ok && (w != "to" && w != "too" && w != "for" && w != "o" || digits.Len() > 0):
			// "to", "for" and "o" count only inside a run of digits.
			digits.WriteString(d)
		case strings.Trim(w, "0123456789") == "":
			digits.WriteString(w)
		}
	}
	if digits.Len() == 0 {
		return text
	}
	return digits.String()
}

func newTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(text)
}

// APICaller makes API steps' calls.
type APICaller struct {
	// Client must be SSRF-safe: [NewAPIClient].
	Client *http.Client
	// Getenv resolves ${NAME} in header values (nil: os.Getenv is NOT
	// used; every reference resolves empty and the call fails).
	Getenv func(string) string
	Logger *slog.Logger
}

// NewAPIClient returns an HTTP client that connects only through dial,
// with no proxy and no redirects. Give it the outbox's dial-time address
// checks, outbox.DialPolicy{}.Dialer() (no loopback, private or
// link-local addresses unless allowed), so what is checked is what is
// connected to.
func NewAPIClient(dial func(ctx context.Context, network, address string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   4,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Call runs step with the user's value and returns the reply to send and
// the outcome; with APIFailed the reply is empty and the caller answers
// with the break message. Secrets never reach the log: only the method,
// the URL without its query and the status are logged.
func (c *APICaller) Call(ctx context.Context, step APIStep, value string) (string, APIOutcome) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reply, outcome, err := c.call(ctx, step, value)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "api step failed", slog.String("method", step.Method),
			slog.String("url", logURL(step.URL)), slog.String("error", err.Error()))
	}
	return reply, outcome
}

// logURL is the declared URL without user info, query or fragment.
func logURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func (c *APICaller) call(ctx context.Context, step APIStep, value string) (string, APIOutcome, error) {
	if err := step.Validate(); err != nil {
		return "", APIFailed, err
	}
	value = strings.TrimSpace(value)
	if value == "" || len(value) > MaxAPIValueBytes {
		return "", APIFailed, fmt.Errorf("value of %d bytes", len(value))
	}
	if !safeValue.MatchString(value) {
		// Not an id the API could know (and no way to walk its paths).
		nf := step.NotFound
		if nf == "" {
			nf = DefaultNotFound
		}
		return nf, APINotFound, nil
	}
	data := map[string]any{"value": value}
	urlT, _ := newTemplate("url", step.URL)
	var ub strings.Builder
	if err := urlT.Execute(&ub, map[string]any{"value": url.PathEscape(value)}); err != nil {
		return "", APIFailed, fmt.Errorf("url template: %w", err)
	}
	var body io.Reader
	if step.Body != "" {
		bodyT, _ := newTemplate("body", step.Body)
		var bb bytes.Buffer
		if err := bodyT.Execute(&bb, data); err != nil {
			return "", APIFailed, fmt.Errorf("body template: %w", err)
		}
		if !json.Valid(bb.Bytes()) {
			return "", APIFailed, errors.New("body template did not make JSON")
		}
		body = &bb
	}
	timeout := step.Timeout
	if timeout <= 0 {
		timeout = DefaultAPITimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		// Leave a tenth of what is left for the reply.
		if left := time.Until(dl) * 9 / 10; left < timeout {
			timeout = left
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(step.Method), ub.String(), body)
	if err != nil {
		return "", APIFailed, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range step.Headers {
		missing := false
		v = envRef.ReplaceAllStringFunc(v, func(ref string) string {
			var got string
			if c.Getenv != nil {
				got = c.Getenv(envRef.FindStringSubmatch(ref)[1])
			}
			missing = missing || got == ""
			return got
		})
		if missing {
			return "", APIFailed, fmt.Errorf("header %s: an environment variable it names is not set", k)
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		// The transport error names the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", APIFailed, fmt.Errorf("call: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAPIResponseBytes+1))
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		nf := step.NotFound
		if nf == "" {
			nf = DefaultNotFound
		}
		return nf, APINotFound, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", APIFailed, fmt.Errorf("status %d", resp.StatusCode)
	case err != nil:
		return "", APIFailed, fmt.Errorf("read answer: %w", err)
	case len(raw) > MaxAPIResponseBytes:
		return "", APIFailed, fmt.Errorf("answer larger than %d bytes", MaxAPIResponseBytes)
	}
	var answer any
	if err := json.Unmarshal(raw, &answer); err != nil {
		return "", APIFailed, fmt.Errorf("answer is not JSON: %w", err)
	}
	obj, ok := answer.(map[string]any)
	if !ok {
		obj = map[string]any{"answer": answer}
	}
	obj["value"] = value
	replyT, _ := newTemplate("reply", step.Reply)
	var rb strings.Builder
	if err := replyT.Execute(&rb, obj); err != nil {
		return "", APIFailed, fmt.Errorf("reply template: %w", err)
	}
	out := strings.TrimSpace(rb.String())
	if out == "" || strings.Contains(out, "<no value>") {
		return "", APIFailed, errors.New("reply template rendered nothing")
	}
	return out, APIAnswered, nil
}
