// Package api holds koel's own HTTP APIs — the synchronous bot API today;
// agent handoff, chat transcripts, FAQ import and admin APIs join it — and
// the JSON helpers every JSON endpoint shares: bodies capped and decoded
// strictly, errors written in the seeds' shape {"error_message": "..."}.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/koelvoice/koel/ivr"
)

// DefaultMaxBody caps JSON request bodies (bytes) where an endpoint sets no
// cap of its own.
const DefaultMaxBody = 64 << 10

// Error is an API error: an HTTP status and the message clients see.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// HTTPStatus implements ivr.HTTPStatuser: an *Error keeps its status and
// message.
func (e *Error) HTTPStatus() (int, string) { return e.Status, e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON shape of every error koel's APIs return.
type ErrorBody struct {
	ErrorMessage string `json:"error_message"`
}

// WriteError writes err as {"error_message": ...} with the status
// ivr.HTTPStatus maps it to: an *Error keeps its status and message, domain
// errors get theirs (invalid input 400, unknown user 403, ...), anything else
// is a 500 with a generic message (the caller logs the detail; see [Fail]).
// It returns the status written.
func WriteError(w http.ResponseWriter, err error) int {
	status, msg := ivr.HTTPStatus(err)
	if status < 400 {
		status, msg = http.StatusInternalServerError, "internal error"
	}
	WriteJSON(w, status, ErrorBody{ErrorMessage: msg})
	return status
}

// Fail writes err like [WriteError] and logs it when it is the server's
// fault (a 5xx), so a client error never floods the log and a server error
// is never lost. logger may be nil.
func Fail(w http.ResponseWriter, r *http.Request, logger *slog.Logger, what string, err error) {
	if status := WriteError(w, err); status >= 500 && logger != nil {
		logger.ErrorContext(r.Context(), what, "error", err, "status", status)
	}
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads one JSON object from r's body into v, refusing bodies over
// maxBytes (413), a Content-Type other than application/json in UTF-8 (415),
// a body that is not valid UTF-8, anything that is not a single JSON object,
// unknown fields and mistyped fields (400). The error is an *Error ready for
// WriteError.
func DecodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, v any) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	if err := CheckContentType(r); err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		return jsonError(err, maxBytes)
	}
	if !utf8.Valid(raw) {
		// encoding/json would store U+FFFD in its place, silently.
		return Errorf(http.StatusBadRequest, "request body is not valid UTF-8")
	}
	if loneSurrogate(raw) {
		// The escaped spelling of the same: "\ud800" alone decodes to U+FFFD.
		return Errorf(http.StatusBadRequest, "request body holds a \\u escape of a lone UTF-16 surrogate")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, maxBytes)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error, maxBytes int64) *Error {
	var (
		mbe *http.MaxBytesError
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", maxBytes)
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "request body is empty")
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "malformed JSON")
	case errors.As(err, &typ):
		if typ.Field != "" {
			return Errorf(http.StatusBadRequest, "field %s must be %s", typ.Field, typ.Type.String())
		}
		return Errorf(http.StatusBadRequest, "request body must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Errorf(http.StatusBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return Errorf(http.StatusBadRequest, "malformed JSON")
	}
}

// loneSurrogate reports whether a JSON text holds a \u escape (four hex digits) of a
// UTF-16 surrogate that is not half of a pair. Malformed escapes are left
// to the decoder.
func loneSurrogate(raw []byte) bool {
	hex4 := func(b []byte) (rune, bool) {
		if len(b) < 4 {
			return 0, false
		}
		var v rune
		for _, c := range b[:4] {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				v = v<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return v, true
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // an escaped character, e.g. \\ or \"
			continue
		}
		v, ok := hex4(raw[i+2:])
		if !ok {
			i++
			continue
		}
		switch {
		case v >= 0xDC00 && v <= 0xDFFF:
			return true
		case v >= 0xD800 && v <= 0xDBFF:
			j := i + 6
			if j+1 >= len(raw) || raw[j] != '\\' || raw[j+1] != 'u' {
				return true
			}
			if lo, ok := hex4(raw[j+2:]); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i = j + 5
		default:
			i += 5
		}
	}
	return false
}

// CheckContentType accepts a request without a Content-Type or with
// application/json, optionally with charset utf-8 (any case); anything else —
// application/jsonp, text/plain, charset=utf-16, a malformed header — is 415.
func CheckContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return Errorf(http.StatusUnsupportedMediaType, "content type must be application/json")
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return Errorf(http.StatusUnsupportedMediaType, "content type must be application/json with charset utf-8 or none")
		}
	}
	return nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}
