// Package kookoo implements the KooKoo (Ozonetel) IVR protocol: the requests
// KooKoo sends to an application URL, the response XML ("KooKoo Tunes") the
// application answers with, the outbound-call API (outbound.php) and the
// end-of-call callback_url POST.
//
// The protocol reference, with sources, is shared/spec/kookoo.md; section
// numbers in comments (§1.2, §2.3...) point into it.
//
// # Requests
//
// KooKoo calls the application URL with GET and URL query parameters (§1.1).
// [ParseRequest] accepts GET and POST (query and form merged), caps every
// size, validates what koel relies on (sid, durations, the shape of data for
// each event) and returns a [Request]. Parameters koel does not know are kept
// in [Request.Extra]. [Request.Values] is the inverse, for emulators.
//
// # Responses
//
// A [Response] is a list of [Verb] values: [PlayText], [SayAs], [PlayAudio],
// [CollectDTMF], [Record], [Dial], [Conference], [Hangup], [GotoURL],
// [SendSMS], and [Unknown] for tags koel does not model. [Response.Render]
// writes lower-case, escaped XML with every duration in KooKoo's unit
// (collectdtmf o in milliseconds, record silence and maxduration in seconds,
// dial limittime and timeout in seconds). [ParseResponse] reads any KooKoo
// XML (tag names in any case, optional XML declaration), so Render and Parse
// round-trip. [Response.Validate] checks the rules KooKoo relies on, such as
// the input or action verb being last.
//
// # Outbound calls
//
// [OutboundClient] places calls through outbound.php (§4) and
// [CallbackHandler] receives the end-of-call POST to callback_url.
//
// # Privacy
//
// Caller numbers are personal data: log them through [MaskNumber]. The
// outbound API key is never logged and never appears in returned errors.
package kookoo
