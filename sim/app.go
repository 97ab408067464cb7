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
// max bytes; non-2xx statuses are errors. A non-nil jar (the call's
// cookies) sends and keeps cookies, redirects included.
func (s *Sim) get(ctx context.Context, t target, max int64, jar http.CookieJar) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "koel-sim (KooKoo emulator)")
	if t.inProcess {
		req.RemoteAddr = "127.0.0.1:0"
		req.RequestURI = t.u.RequestURI()
		if jar != nil {
			for _, c := range jar.Cookies(t.u) {
				req.AddCookie(c)
			}
		}
		w := &cappedWriter{h: http.Header{}, max: max}
		s.cfg.App.ServeHTTP(w, req)
		if jar != nil {
			if cs := (&http.Response{Header: w.h}).Cookies(); len(cs) > 0 {
				jar.SetCookies(t.u, cs)
			}
		}
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
	hc := s.cfg.HTTPClient
	if jar != nil {
		withJar := *hc
		withJar.Jar = jar
		hc = &withJar
	}
	resp, err := hc.Do(req)
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

// appReply is an app's parsed response and what tolerant reading had to
// say about it.
type appReply struct {
	resp     kookoo.Response
	warnings []kookoo.ParseWarning
}

// requestApp sends one KooKoo request with the call's cookies and reads
// the response as KooKoo does (kookoo.ParseResponseTolerant); with strict,
// a response that needs a tolerance or fails kookoo's validation is an
// error. For Hangup and Disconnect the response is read and ignored (the
// call is over).
func (s *Sim) requestApp(ctx context.Context, t target, v url.Values, jar http.CookieJar, strict bool) (appReply, error) {
	u := *t.u
	q := u.Query()
	for k, vals := range v {
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	t.u = &u
	ev := kookoo.Event(v.Get("event"))
	label := string(ev)
	switch {
	case ev == kookoo.EventNone:
		label = "none"
	case !ev.Known():
		label = "other"
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AppTimeout)
	defer cancel()
	body, err := s.get(ctx, t, s.cfg.MaxAppBodyBytes, jar)
	took := time.Since(start)
	s.m.appRequest.WithLabelValues(label).Observe(took.Seconds())
	s.log.Debug("app request", "event", label, "took", took)
	if err != nil {
		s.m.appErrors.Inc()
		return appReply{}, fmt.Errorf("%w: %s event=%s: %w", ErrApp, t, label, err)
	}
	if ev.Ended() {
		return appReply{}, nil
	}
	resp, warnings, err := kookoo.ParseResponseTolerant(body)
	if err == nil && strict {
		if len(warnings) > 0 {
			err = fmt.Errorf("--strict: %s", warnings[0])
		} else {
			err = resp.Validate()
		}
	}
	if err != nil {
		s.m.appErrors.Inc()
		return appReply{}, fmt.Errorf("%w: %s event=%s: invalid KooKoo XML: %w", ErrApp, t, label, err)
	}
	return appReply{resp: resp, warnings: warnings}, nil
}
