package kookoo

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
)

// MaxVerbs caps the number of verbs in a response, nested prompts included.
const MaxVerbs = 64

// ContentType is the Content-Type of rendered responses.
const ContentType = "text/xml; charset=utf-8"

// Response is a KooKoo response document (§2): <response sid=".."
// filler="yes"> followed by verbs that KooKoo runs in order.
type Response struct {
	// SID is echoed in the sid attribute for session tracking; normally
	// the request's sid. Empty leaves the attribute out.
	SID string
	// Filler asks KooKoo to request the next step right away while
	// playing filler audio (§2.2), for slow steps.
	Filler bool
	// Verbs are the tags, in order. The input or action verb, if any,
	// must be last but for a trailing GotoURL (see Validate).
	Verbs []Verb
}

// Render returns the response as XML: lower-case tag names, every text and
// attribute escaped, durations in KooKoo's units, no XML declaration (KooKoo
// accepts documents with and without one). Render does not validate: nil
// verbs and [Unknown] verbs without a valid name are left out, and other
// bad values are written as they are; call [Response.Validate] on responses
// built from untrusted input.
func (r Response) Render() []byte {
	var b bytes.Buffer
	b.Grow(64 + 96*len(r.Verbs))
	b.WriteString("<response")
	xmlAttr(&b, "sid", r.SID)
	if r.Filler {
		xmlAttr(&b, "filler", "yes")
	}
	b.WriteByte('>')
	for _, v := range r.Verbs {
		if !isNilVerb(v) {
			v.render(&b)
		}
	}
	b.WriteString("</response>")
	return b.Bytes()
}

// String returns the rendered XML.
func (r Response) String() string { return string(r.Render()) }

// Validate checks r against the protocol (§2.1, §3.1):
//   - sid, when set, is 1-128 characters of [A-Za-z0-9._:-];
//   - at most [MaxVerbs] verbs; no nil or pointer verbs;
//   - every verb is well-formed (required content present, attributes in
//     range, URLs absolute http(s), durations whole in their unit);
//   - collectdtmf only nests playtext, playaudio and say-as;
//   - after an input or action verb (collectdtmf, record, dial, conference,
//     hangup) only a gotourl may follow, and gotourl is always last;
//     in particular no hangup after dial.
//
// Errors wrap [ErrInvalidResponse] and name the verb by index.
func (r Response) Validate() error {
	if r.SID != "" && !validSID(r.SID) {
		return fmt.Errorf("%w: sid must be 1-%d characters of [A-Za-z0-9._:-]", ErrInvalidResponse, maxSIDBytes)
	}
	n := len(r.Verbs)
	for _, v := range r.Verbs {
		if c, ok := v.(CollectDTMF); ok {
			n += len(c.Prompts)
		}
	}
	if n > MaxVerbs {
		return fmt.Errorf("%w: %d verbs, at most %d", ErrInvalidResponse, n, MaxVerbs)
	}
	var action Verb // the input or action verb seen so far
	for i, v := range r.Verbs {
		if err := checkVerbValue(v); err != nil {
			return fmt.Errorf("%w: verb %d: %w", ErrInvalidResponse, i, err)
		}
		if err := v.validate(); err != nil {
			return fmt.Errorf("%w: verb %d <%s>: %w", ErrInvalidResponse, i, v.TagName(), err)
		}
		if _, isGoto := v.(GotoURL); isGoto {
			if i != len(r.Verbs)-1 {
				return fmt.Errorf("%w: verb %d <gotourl> must be the last verb", ErrInvalidResponse, i)
			}
			continue
		}
		if action != nil {
			if _, ok := action.(Dial); ok {
				if _, ok := v.(Hangup); ok {
					return fmt.Errorf("%w: verb %d: no <hangup> after <dial> (§2.1)", ErrInvalidResponse, i)
				}
			}
			return fmt.Errorf("%w: verb %d <%s> after <%s>, which must be the last verb", ErrInvalidResponse, i, v.TagName(), action.TagName())
		}
		if isAction(v) {
			action = v
		}
	}
	return nil
}

// ServeHTTP writes r as the HTTP response: 200, Content-Type
// text/xml; charset=utf-8, the rendered XML.
func (r Response) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	_ = WriteResponse(w, r)
}

// WriteResponse writes resp to w with status 200 and [ContentType] and
// returns the error of the write, if any.
func WriteResponse(w http.ResponseWriter, resp Response) error {
	xmlTextAndClose := resp.Render()
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(xmlTextAndClose)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(xmlTextAndClose); err != nil {
		return fmt.Errorf("kookoo: write response: %w", err)
	}
	return nil
}

// WriteEmpty answers with 200 and an empty body, what KooKoo expects after
// Hangup and Disconnect (§1.3).
func WriteEmpty(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// isAction reports whether v is an input or action verb, after which KooKoo
// sends the next event (§3.1).
func isAction(v Verb) bool {
	switch v.(type) {
	case CollectDTMF, Record, Dial, Conference, Hangup, Stream:
		return true
	}
	return false
}

// checkVerbValue rejects nil verbs and pointers to verbs.
func checkVerbValue(v Verb) error {
	if v == nil {
		return errors.New("nil verb")
	}
	if reflect.ValueOf(v).Kind() == reflect.Pointer {
		return fmt.Errorf("%T: use the value type, not a pointer", v)
	}
	return nil
}

// isNilVerb reports whether v is nil or a nil pointer.
func isNilVerb(v Verb) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// verbName names v for an error message, nil-safe.
func verbName(v Verb) string {
	if isNilVerb(v) {
		return "nil"
	}
	return "<" + v.TagName() + ">"
}
