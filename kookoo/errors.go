package kookoo

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is) or are an [*OutboundError] (test with errors.As).
var (
	// ErrTooLarge means a request, a parameter value, a response document or
	// an API reply exceeds one of the package's size caps.
	ErrTooLarge = errors.New("kookoo: too large")

	// ErrMethodNotAllowed means an HTTP request used a method other than
	// GET, HEAD or POST.
	ErrMethodNotAllowed = errors.New("kookoo: method not allowed")

	// ErrUnknownEvent means the event parameter holds a value that is not a
	// KooKoo event (§1.3). The Request returned with it carries the raw
	// event and the sid, so the caller can still answer safely.
	ErrUnknownEvent = errors.New("kookoo: unknown event")

	// ErrMissingSID means a request other than the portal probe (NewCall
	// without sid, §1.1) has no sid.
	ErrMissingSID = errors.New("kookoo: missing sid")

	// ErrInvalidParam means a request parameter is malformed: a sid with
	// unexpected characters, a non-integer duration, a Record or Dial data
	// that is not a URL, GotDTMF data that is not keypad digits, or a query
	// string that cannot be decoded.
	ErrInvalidParam = errors.New("kookoo: invalid parameter")

	// ErrEmptyResponse means a response body holds no XML at all. KooKoo
	// apps answer Hangup and Disconnect that way (§1.3), so it is not
	// necessarily a fault.
	ErrEmptyResponse = errors.New("kookoo: empty response")

	// ErrMalformedResponse means a response body is not KooKoo XML: not
	// well-formed, not rooted at <response>, or with a verb whose
	// attributes or content cannot be read.
	ErrMalformedResponse = errors.New("kookoo: malformed response")

	// ErrInvalidResponse means a Response breaks a rule of the protocol
	// (see [Response.Validate]).
	ErrInvalidResponse = errors.New("kookoo: invalid response")

	// ErrInvalidOutbound means an outbound call request or the client's
	// configuration is unusable (no API key, bad number, no url and no
	// extra_data...). Nothing was sent to KooKoo.
	ErrInvalidOutbound = errors.New("kookoo: invalid outbound call")

	// ErrInvalidCallback means an end-of-call callback is malformed.
	ErrInvalidCallback = errors.New("kookoo: invalid callback")
)
