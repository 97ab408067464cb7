package ivr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Errors shared by the store and its consumers. Package store re-exports
// them, so callers may test with either name.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique key already exists (a duplicate message
	// external id, a connection identifier, a call sid).
	ErrConflict = errors.New("store: conflict")
	// ErrVersionConflict means an optimistic update lost against another
	// writer: re-read and retry.
	ErrVersionConflict = errors.New("store: version conflict")
	// ErrLocked means a call lock is held by another owner.
	ErrLocked = errors.New("store: locked")
	// ErrInvalid means the input was rejected before anything was written:
	// an empty or oversized key, text that is not valid UTF-8 or holds a NUL
	// byte, an unknown enum value. Channels answer it with 400. An
	// [*InputError] matches it and names the field.
	ErrInvalid = errors.New("invalid input")
	// ErrConnectionInactive means the connection a request came through is
	// switched off: the channel answers 404 and stores nothing.
	ErrConnectionInactive = errors.New("ivr: connection is not active")
	// ErrBusinessInactive means the business is switched off (403).
	ErrBusinessInactive = errors.New("ivr: business is not active")
	// ErrUnavailable means the node is draining or overloaded and refuses
	// new work for now (503): the client should retry, elsewhere or later.
	ErrUnavailable = errors.New("ivr: temporarily unavailable")
)

// InputError is invalid input a client sent: the field and what is wrong
// with it. It matches [ErrInvalid] with errors.Is, and its Error text is
// written for the client ("text contains a NUL byte").
type InputError struct {
	// Field names the input as the client knows it ("text", "auth_id").
	Field string
	// Problem says what is wrong ("contains a NUL byte").
	Problem string
}

func (e *InputError) Error() string { return e.Field + " " + e.Problem }

// Is makes an InputError match [ErrInvalid].
func (e *InputError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns an [*InputError] for field with a formatted problem.
func Invalid(field, format string, args ...any) error {
	return &InputError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// CheckText checks that s can be stored and shown on every backend and
// channel: valid UTF-8, no NUL byte, at most maxBytes bytes (0: no cap). The
// error is an [*InputError] naming field.
func CheckText(field, s string, maxBytes int) error {
	switch {
	case maxBytes > 0 && len(s) > maxBytes:
		return Invalid(field, "is longer than %d bytes", maxBytes)
	case !utf8.ValidString(s):
		return Invalid(field, "is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return Invalid(field, "contains a NUL byte")
	}
	return nil
}

// MaxExternalIDBytes caps platform ids of users and messages (auth_id,
// PSID, phone numbers, message ids).
const MaxExternalIDBytes = 256

// CheckExternalID checks a platform id: non-empty, at most
// [MaxExternalIDBytes], valid UTF-8 without NUL bytes.
func CheckExternalID(field, id string) error {
	if strings.TrimSpace(id) == "" {
		return Invalid(field, "missing in the request")
	}
	return CheckText(field, id, MaxExternalIDBytes)
}

// CheckInbound validates everything of in that the engine stores, before
// anything is written: text, user id and message id.
func CheckInbound(in Inbound) error {
	if in.Text == "" {
		return ErrEmptyText
	}
	if len(in.Text) > MaxTextBytes {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTextTooLong, len(in.Text), MaxTextBytes)
	}
	if err := CheckText("text", in.Text, 0); err != nil {
		return err
	}
	if err := CheckExternalID("user id", in.UserExternalID); err != nil {
		return err
	}
	if in.ExternalMessageID != "" {
		if err := CheckText("message id", in.ExternalMessageID, MaxExternalIDBytes); err != nil {
			return err
		}
	}
	return nil
}

// HTTPStatuser is an error that carries its own HTTP status and the message
// clients see (package api's Error). [HTTPStatus] honours it first.
type HTTPStatuser interface {
	error
	HTTPStatus() (status int, message string)
}

// HTTPStatus maps an error to the HTTP status and client message every
// channel answers with. It is the one place that decides how a domain error
// looks on the wire; channels write the pair in their platform's shape
// (JSON {"error_message": ...} for koel's own APIs). A status of 500 means
// the error is the server's fault: log the error itself, show only the
// generic message.
func HTTPStatus(err error) (status int, message string) {
	var hs HTTPStatuser
	var ie *InputError
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK, ""
	case errors.As(err, &hs):
		return hs.HTTPStatus()
	case errors.As(err, &ie):
		return http.StatusBadRequest, ie.Error()
	case errors.As(err, &mbe):
		// A body read through http.MaxBytesReader (a form, a raw payload).
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, ErrEmptyText):
		return http.StatusBadRequest, "text missing in the request"
	case errors.Is(err, ErrTextTooLong):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("text is longer than %d bytes", MaxTextBytes)
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "invalid input"
	case errors.Is(err, ErrUserNotRegistered):
		return http.StatusForbidden, "user is not registered"
	case errors.Is(err, ErrConnectionInactive):
		return http.StatusNotFound, "connection is not active"
	case errors.Is(err, ErrBusinessInactive):
		return http.StatusForbidden, "business is inactive"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not found"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, ErrVersionConflict), errors.Is(err, ErrLocked):
		return http.StatusConflict, "concurrent update, please retry"
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "temporarily unavailable, please retry"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timed out, please retry"
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return http.StatusServiceUnavailable, "request canceled"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
func isConflict(err error) bool { return errors.Is(err, ErrConflict) }
