package kookoo

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
)

// Stream bridges the live call to a WebSocket at URL (kookoo-stream.md §1):
// KooKoo opens it, exchanges JSON audio messages (see
// [ParsePlatformMessage]) and, when the app closes it, requests the app URL
// again with event=Stream; the call is still up. A hang-up during the
// stream is reported as Hangup with process=stream.
type Stream struct {
	// URL is the absolute ws:// or wss:// URL KooKoo connects to; its query
	// arrives as written. Required.
	URL string
	// SIPNumber is the account's SIP registration number, the element's
	// text. Required.
	SIPNumber string
	// XUUI is forwarded on the WebSocket start as x_headers (in practice
	// JSON). Optional.
	XUUI string
}

// TagName implements [Verb].
func (Stream) TagName() string { return "stream" }

func (v Stream) render(b *bytes.Buffer) {
	xmlOpen(b, "stream")
	xmlAttrAlways(b, "is_sip", "true")
	xmlAttr(b, "url", v.URL)
	xmlAttr(b, "x-uui", v.XUUI)
	xmlTextAndClose(b, "stream", v.SIPNumber)
}

func (v Stream) validate() error {
	if err := checkStreamURL(v.URL); err != nil {
		return err
	}
	if !validNumber(v.SIPNumber) {
		return fmt.Errorf("SIP number must be up to %d digits", maxNumberDigits)
	}
	if len(v.XUUI) > maxXHeadersBytes {
		return fmt.Errorf("x-uui over %d bytes", maxXHeadersBytes)
	}
	return nil
}

// checkStreamURL accepts absolute ws:// and wss:// URLs with a host.
func checkStreamURL(s string) error {
	if len(s) > MaxURLBytes {
		return fmt.Errorf("URL over %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss") || u.User != nil {
		return fmt.Errorf("not an absolute ws(s) URL")
	}
	return nil
}

// StartRecord records the whole call from here on (kookoo-stream.md §1);
// it is not an input tag, KooKoo goes on with the next verb.
type StartRecord struct{}

// TagName implements [Verb].
func (StartRecord) TagName() string { return "start-record" }

func (StartRecord) render(b *bytes.Buffer) { b.WriteString("<start-record/>") }

func (StartRecord) validate() error { return nil }

// parseStream reads a <stream> whose start tag has been read.
func (p *parser) stream(a map[string]string) (Verb, error) {
	if v, ok := a["is_sip"]; ok && !strings.EqualFold(v, "true") {
		return nil, p.malformed("stream", fmt.Errorf("is_sip %q is not true", truncateForError(v)))
	}
	text, err := p.text("stream")
	return Stream{URL: a["url"], SIPNumber: text, XUUI: a["x-uui"]}, err
}
