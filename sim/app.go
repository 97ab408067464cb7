package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/koelvoice/koel/kookoo"
)

// connectionPattern is what a koel connection identifier may look like.
var connectionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// target is where the emulator sends KooKoo requests: a URL, served in
// process by Config.App when it is under PublicBaseURL, else over HTTP.
type target struct {
	u         *url.URL
	inProcess bool
}

// String renders the target for events and logs, without query or
// credentials.
func (t target) String() string { return redactURL(t.u) }

// connectionTarget is koel's own KooKoo app for a connection.
func (s *Sim) connectionTarget(connection string) (target, error) {
	if !connectionPattern.MatchString(connection) {
		return target{}, fmt.Errorf("%w: connection %q is not a valid identifier", ErrBadRequest, connection)
	}
	if s.cfg.App == nil {
		return target{}, fmt.Errorf("%w: no in-process app: give an app URL", ErrBadRequest)
	}
	u, err := url.Parse(s.cfg.PublicBaseURL + "/kookoo/" + url.PathEscape(connection))
	if err != nil {
		return target{}, fmt.Errorf("%w: connection %q: %w", ErrBadRequest, connection, err)
	}
	return target{u: u, inProcess: true}, nil
}

// urlTarget is an app URL a user or an app gave (app_url, gotourl): under
// PublicBaseURL it is served in process, else the URL policy must allow it.
func (s *Sim) urlTarget(raw string) (target, error) {
	if len(raw) > 2048 {
		return target{}, fmt.Errorf("%w: url of %d bytes", ErrBadRequest, len(raw))
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return target{}, fmt.Errorf("%w: url: %w", ErrBadRequest, err)
	}
	if s.cfg.App != nil && s.isLocal(u) {
		return target{u: u, inProcess: true}, nil
	}
	if err := s.cfg.AllowURL(u); err != nil {
		return target{}, fmt.Errorf("%w: %s: %w", ErrURLNotAllowed, redactURL(u), err)
	}
	return target{u: u}, nil
}

// isLocal reports whether u points at this server (PublicBaseURL).
func (s *Sim) isLocal(u *url.URL) bool {
	base, err := url.Parse(s.cfg.PublicBaseURL)
	if err != nil {
		return false
	}
	return u.Scheme == base.Scheme && strings.EqualFold(u.Host, base.Host) && u.User == nil
}

// cappedWriter is an http.ResponseWriter for in-process requests that
// keeps at most max body bytes.
type cappedWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
	max    int64
	over   bool
}

func (w *cappedWriter) Header() http.Header { return w.h }
func (w *cappedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *cappedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if int64(w.body.Len()+len(b)) > w.max {
		w.over = true
		return 0, fmt.Errorf("sim: response over %d bytes", w.max)
	}
	return w.body.Write(b)
}

// get fetches u with GET, in process or over HTTP, with the body capped at
// max bytes; non-2xx statuses are errors.
func (s *Sim) get(ctx context.Context, t target, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "koel-sim (KooKoo emulator)")
	if t.inProcess {
		req.RemoteAddr = "127.0.0.1:0"
		req.RequestURI = t.u.RequestURI()
		w := &cappedWriter{h: http.Header{}, max: max}
		s.cfg.App.ServeHTTP(w, req)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("in-process request: %w", err)
		}
		if w.over {
			return nil, fmt.Errorf("response over %d bytes", max)
		}
		if w.status == 0 {
			w.status = http.StatusOK
		}
		if w.status < 200 || w.status > 299 {
			return nil, fmt.Errorf("status %d: %s", w.status, snippet(w.body.Bytes()))
		}
		return w.body.Bytes(), nil
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("response over %d bytes", max)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, snippet(body))
	}
	return body, nil
}

// snippet returns the start of a body for error messages.
func snippet(b []byte) string {
	const n = 120
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.TrimSpace(s)
}

// requestApp sends one KooKoo request and parses the response. For Hangup
// and Disconnect the response is read and ignored (the call is over).
func (s *Sim) requestApp(ctx context.Context, t target, v url.Values) (kookoo.Response, error) {
	u := *t.u
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	t.u = &u
	ev := v.Get("event")
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AppTimeout)
	defer cancel()
	body, err := s.get(ctx, t, s.cfg.MaxAppBodyBytes)
	took := time.Since(start)
	s.m.appRequest.WithLabelValues(eventLabel(ev)).Observe(took.Seconds())
	s.log.Debug("app request", "event", eventLabel(ev), "took", took)
	if err != nil {
		s.m.appErrors.Inc()
		return kookoo.Response{}, fmt.Errorf("%w: %s event=%s: %w", ErrApp, t, eventLabel(ev), err)
	}
	if ev == string(kookoo.EventHangup) || ev == string(kookoo.EventDisconnect) {
		return kookoo.Response{}, nil
	}
	resp, err := kookoo.ParseResponse(body)
	if err != nil {
		s.m.appErrors.Inc()
		return kookoo.Response{}, fmt.Errorf("%w: %s event=%s: invalid KooKoo XML: %w", ErrApp, t, eventLabel(ev), err)
	}
	return resp, nil
}

// eventLabel is the metric label of a KooKoo event ("none" for the
// follow-up request without one).
func eventLabel(ev string) string {
	switch kookoo.Event(ev) {
	case kookoo.EventNewCall, kookoo.EventRecord, kookoo.EventGotDTMF, kookoo.EventDial, kookoo.EventHangup, kookoo.EventDisconnect:
		return ev
	case "":
		return "none"
	}
	return "other"
}
