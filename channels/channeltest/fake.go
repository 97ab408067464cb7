// Package channeltest runs fake text platforms on loopback for koel's
// channel tests: Meta's Graph API (Messenger Send API, WhatsApp Cloud API),
// Twilio's Messages API, Infobip, Gupshup, Karix and Jio. Each fake checks
// path, credentials and body at least as strictly as the real platform
// (unknown fields and over-limit values are refused with the platform's own
// error shape), records what it accepted, and can be told to fail the next
// attempts (429 with Retry-After, 500, …) to exercise retries.
package channeltest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Request is one request a fake platform received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	// Form holds the decoded body of form-encoded requests.
	Form url.Values
}

// JSON decodes the request body into v.
func (r Request) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Failure is a scripted answer to one attempt.
type Failure struct {
	Status     int
	RetryAfter string // Retry-After header value, "" for none
	Body       string
	// Header holds more response headers (Graph's usage headers).
	Header map[string]string
}

// check validates one request; a non-zero status refuses it with body.
type check func(r *http.Request, body []byte) (status int, errBody string)

// Platform is one fake platform API.
type Platform struct {
	Server *httptest.Server

	check  check
	accept func(r *http.Request, body []byte, n int) (int, string)

	mu       sync.Mutex
	failures []Failure
	onAccept func(Request)
	attempts int
	refused  []Request
	accepted []Request
	notify   chan struct{}
}

func newPlatform(t testing.TB, c check, accept func(*http.Request, []byte, int) (int, string)) *Platform {
	p := &Platform{check: c, accept: accept, notify: make(chan struct{}, 1)}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Server.Close)
	return p
}

// URL is the fake's base URL.
func (p *Platform) URL() string { return p.Server.URL }

// FailNext makes the next attempts answer the given failures, in order.
func (p *Platform) FailNext(f ...Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = append(p.failures, f...)
}

// OnAccept makes f be called with every request accepted from now on
// (benchmarks time deliveries with it).
func (p *Platform) OnAccept(f func(Request)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onAccept = f
}

// Attempts counts every request received, refused or accepted.
func (p *Platform) Attempts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts
}

// Accepted returns the requests accepted so far.
func (p *Platform) Accepted() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.accepted...)
}

// Refused returns the requests the fake's checks refused (not the scripted
// failures).
func (p *Platform) Refused() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.refused...)
}

// WaitAccepted waits until n requests were accepted and returns them; it
// fails the test after timeout.
func (p *Platform) WaitAccepted(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if got := p.Accepted(); len(got) >= n {
			return got
		}
		select {
		case <-p.notify:
		case <-deadline.C:
			got := p.Accepted()
			t.Fatalf("fake platform accepted %d requests, want %d (attempts %d, refused %d)", len(got), n, p.Attempts(), len(p.Refused()))
			return got
		}
	}
}

func (p *Platform) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}
	if f, err := url.ParseQuery(string(body)); err == nil && isForm(r) {
		rec.Form = f
	}
	p.mu.Lock()
	p.attempts++
	var fail *Failure
	if len(p.failures) > 0 {
		f := p.failures[0]
		p.failures = p.failures[1:]
		fail = &f
	}
	p.mu.Unlock()
	defer func() {
		select {
		case p.notify <- struct{}{}:
		default:
		}
	}()
	if status, msg := p.check(r, body); status != 0 {
		p.mu.Lock()
		p.refused = append(p.refused, rec)
		p.mu.Unlock()
		writeJSON(w, status, msg)
		return
	}
	if fail != nil {
		if fail.RetryAfter != "" {
			w.Header().Set("Retry-After", fail.RetryAfter)
		}
		for k, v := range fail.Header {
			w.Header().Set(k, v)
		}
		writeJSON(w, fail.Status, fail.Body)
		return
	}
	p.mu.Lock()
	p.accepted = append(p.accepted, rec)
	k := len(p.accepted)
	onAccept := p.onAccept
	p.mu.Unlock()
	if onAccept != nil {
		onAccept(rec)
	}
	status, resp := p.accept(r, body, k)
	writeJSON(w, status, resp)
}

func isForm(r *http.Request) bool {
	return r.Header.Get("Content-Type") == "application/x-www-form-urlencoded"
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// strictJSON decodes body into v refusing unknown fields and trailing data.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}

func runeLen(s string) int { return len([]rune(s)) }
