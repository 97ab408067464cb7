package kookoo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// CallbackEvent is the end-of-call request KooKoo sends to an outbound
// call's callback_url, answered or not (§4).
type CallbackEvent struct {
	// SID is the call's sid, the one Call returned.
	SID string
	// Status is "answered" when the callee answered; other values
	// (e.g. "ring") mean not answered.
	Status string
	// StartTime is KooKoo's start time of the call, as sent.
	StartTime string
	// CallerID is the caller id used. Log it with [MaskNumber].
	CallerID string
	// PhoneNo is the number called. Personal data: log it with
	// [MaskNumber].
	PhoneNo string
	// StatusDetails is KooKoo's detail of the status.
	StatusDetails string
	// Duration is the call's duration in seconds, -1 when absent.
	Duration int
	// RingingTime is the ringing time in seconds, -1 when absent.
	RingingTime int
}

// Answered reports whether the callee answered.
func (e CallbackEvent) Answered() bool { return strings.EqualFold(e.Status, "answered") }

// ParseCallback reads the callback_url request: a POST form (GET query
// also accepted) with sid, status, start_time, caller_id, phone_no,
// duration, ringing_time and status_details. Errors: [ErrMethodNotAllowed],
// [ErrTooLarge], or [ErrInvalidCallback] for a missing or malformed sid or a
// non-integer duration.
func ParseCallback(r *http.Request) (CallbackEvent, error) {
	v, err := requestValues(r)
	if err != nil {
		return CallbackEvent{}, err
	}
	if err := checkSizes(v); err != nil {
		return CallbackEvent{}, err
	}
	sid, _ := firstValue(v, "sid")
	if !validSID(sid) {
		return CallbackEvent{}, fmt.Errorf("%w: sid missing or not 1-%d characters of [A-Za-z0-9._:-]", ErrInvalidCallback, maxSIDBytes)
	}
	ev := CallbackEvent{
		SID:           sid,
		Status:        cleanParam(v, "status"),
		StartTime:     cleanParam(v, "start_time"),
		CallerID:      cleanParam(v, "caller_id"),
		PhoneNo:       cleanParam(v, "phone_no"),
		StatusDetails: cleanParam(v, "status_details"),
	}
	if ev.Duration, err = callbackInt(v, "duration"); err != nil {
		return CallbackEvent{}, err
	}
	if ev.RingingTime, err = callbackInt(v, "ringing_time"); err != nil {
		return CallbackEvent{}, err
	}
	return ev, nil
}

func callbackInt(v url.Values, k string) (int, error) {
	n, err := intParam(v, k)
	if err != nil {
		return -1, fmt.Errorf("%w: %s is not a whole number of seconds", ErrInvalidCallback, k)
	}
	return n, nil
}

// CallbackHandler returns the handler for callback_url. It parses the
// request, calls handle with the request's context and answers 200 "ok";
// a malformed request gets 400 (413 when too large, 405 for a method other
// than GET, HEAD or POST) and handle is not called; an error from handle
// gives 500, so that a retrying sender tries again. Numbers are masked in
// the log lines; a nil logger discards them.
func CallbackHandler(handle func(ctx context.Context, ev CallbackEvent) error, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ev, err := ParseCallback(r)
		if err != nil {
			code := http.StatusBadRequest
			switch {
			case errors.Is(err, ErrMethodNotAllowed):
				code = http.StatusMethodNotAllowed
				w.Header().Set("Allow", "GET, HEAD, POST")
			case errors.Is(err, ErrTooLarge):
				code = http.StatusRequestEntityTooLarge
			}
			logger.WarnContext(ctx, "kookoo callback rejected", "err", err)
			http.Error(w, err.Error(), code)
			return
		}
		log := logger.With("sid", ev.SID)
		if err := handle(ctx, ev); err != nil {
			log.ErrorContext(ctx, "kookoo callback handling failed", "err", err)
			http.Error(w, "callback not processed", http.StatusInternalServerError)
			return
		}
		log.InfoContext(ctx, "kookoo call finished", "status", ev.Status, "answered", ev.Answered(),
			"duration_seconds", ev.Duration, "ringing_seconds", ev.RingingTime,
			"phone", MaskNumber(ev.PhoneNo))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len("ok")))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	})
}
