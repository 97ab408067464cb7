package kookoo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxResponseBytes caps the documents [ParseResponse] reads.
const MaxResponseBytes = 256 << 10

// maxDepth caps element nesting inside an [Unknown] verb.
const maxDepth = 32

// Caps on numeric attributes while parsing, so durations cannot overflow.
const (
	maxParsedMillis  = 1_000_000_000 // about 11.5 days
	maxParsedSeconds = 10_000_000    // about 115 days
	maxParsedCount   = 1_000_000
)

// ParseResponse reads a KooKoo response document, as KooKoo would (§2.1):
// tag and attribute names in any case (<Response>, <PlayText>, <Say-As>,
// <CollectDtmf>, <GoToUrl>...), an optional XML declaration, comments, and
// whitespace between tags. Text and known attribute values are trimmed of
// surrounding white space. Tags koel does not model become [Unknown] verbs;
// attributes koel does not model on known tags are dropped. The result is
// not validated (see [Response.Validate]): ParseResponse accepts what KooKoo
// can execute, and Render of the result parses back to the same Response.
//
// Errors: [ErrTooLarge] over [MaxResponseBytes] or [MaxVerbs];
// [ErrEmptyResponse] for an empty or all-white-space body;
// [ErrMalformedResponse] for anything else that is not KooKoo XML (not
// well-formed, not UTF-8, root not <response>, text between verbs, a tag
// nested where KooKoo nests none, a non-numeric number attribute...).
func ParseResponse(data []byte) (Response, error) {
	resp, _, err := parseResponse(data, false)
	return resp, err
}

// ParseResponseTolerant reads a response the way the KooKoo platform reads
// one: a value it cannot use falls back to KooKoo's default instead of
// failing the document, and each fallback is reported as a [ParseWarning].
// Only what cannot be read at all is an error: a document that is not
// well-formed XML, whose root is not <response>, or over the caps
// ([ErrMalformedResponse], [ErrTooLarge]).
//
// The tolerances, each with its evidence:
//   - An empty or all-white-space body is read as <response/>, with a
//     warning. Evidence: the official Java samples (kookoolib/KooKoo-Java
//     snippets/playbackdynamictext.jsp, pinvalidation.jsp) answer the
//     follow-up request after their play-only response with a body of
//     white space only; the PHP samples answer an event they do not handle
//     with <response/>. Both end the call.
//   - A number attribute that is not a number, or is outside what the
//     verb allows (silence="wav", maxduration="2m", speed="12"), is read as
//     absent, so KooKoo's default applies. Evidence: the official PHP
//     library's own samples call addRecord('filename2','wav','120'), which
//     writes silence="wav" (kookoolib/KooKoo-PHP demo.php, demo_gotopage.php
//     and "Record and playback the audio in KooKoo.php"); they are
//     published as working samples, so the platform records with its
//     default silence.
//   - A boolean attribute that is not one (record="maybe") is false, and an
//     enumerated one outside its set (format="ogg", moh="loud",
//     termchar="xy", option="z") is absent: the same reading, by analogy.
//   - An attribute KooKoo does not document (<record foo="1">) is ignored.
//     Attributes that KooKoo documents but koel does not model
//     (conference version, gotourl clean_params, dial
//     transfer_allowed_by_caller...) are ignored without a warning: the PHP
//     library writes version="1" on every <conference>.
//   - Tag and attribute names are read in any case (<PlayText>,
//     promptToCalledNumber): KooKoo's own OpenVBX port writes CamelCase tags
//     and the PHP library writes <Say-As>. No warning.
//   - Text directly inside <response> or <collectdtmf>, a tag that
//     <collectdtmf> cannot hold, and anything after </response> are
//     skipped; an element inside a text tag (<playtext>a <b>b</b></playtext>)
//     gives up its text. An XML reader that executes tags, as KooKoo does,
//     skips what it does not know.
func ParseResponseTolerant(data []byte) (Response, []ParseWarning, error) {
	return parseResponse(data, true)
}

// ParseWarning is one value that [ParseResponseTolerant] did not take as
// written.
type ParseWarning struct {
	// Tag is the lower-case tag name, e.g. "record".
	Tag string
	// Attr is the attribute's name as written; empty for a problem with
	// the tag's content.
	Attr string
	// Value is the value as written (cut to 32 bytes).
	Value string
	// Default is what was used instead: KooKoo's default, in the
	// attribute's own units; empty when the item is ignored.
	Default string
	// Problem says what is wrong, e.g. "is not an integer".
	Problem string
}

// String renders the warning for a developer, e.g.
// `<record> silence="wav" is not an integer; KooKoo's default 4 is used`.
func (w ParseWarning) String() string {
	var b strings.Builder
	b.WriteString("<" + w.Tag + ">")
	if w.Attr != "" {
		fmt.Fprintf(&b, " %s=%q", w.Attr, w.Value)
	}
	b.WriteString(" " + w.Problem)
	switch {
	case w.Default != "" && w.Attr == "":
		b.WriteString("; read as " + w.Default)
	case w.Default != "":
		b.WriteString("; KooKoo's default " + w.Default + " is used")
	default:
		b.WriteString("; ignored")
	}
	return b.String()
}

func parseResponse(data []byte, tolerant bool) (Response, []ParseWarning, error) {
	if len(data) > MaxResponseBytes {
		return Response{}, nil, fmt.Errorf("%w: response over %d bytes", ErrTooLarge, MaxResponseBytes)
	}
	if len(bytes.Trim(data, " \t\r\n")) == 0 {
		if tolerant {
			return Response{}, []ParseWarning{{Tag: "response", Problem: "is missing: the body is empty", Default: "<response/>"}}, nil
		}
		return Response{}, nil, ErrEmptyResponse
	}
	p := &parser{d: xml.NewDecoder(bytes.NewReader(data)), tolerant: tolerant}
	p.d.Strict = true
	var (
		resp Response
		seen bool
	)
	for {
		tok, err := p.d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Response{}, nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if seen {
				if err := p.skipAfterRoot(t); err != nil {
					return Response{}, nil, err
				}
				continue
			}
			if strings.ToLower(t.Name.Local) != "response" {
				return Response{}, nil, fmt.Errorf("%w: root element is <%s>, not <response>", ErrMalformedResponse, t.Name.Local)
			}
			if resp, err = p.root(t); err != nil {
				return Response{}, nil, err
			}
			seen = true
		case xml.CharData:
			if !isXMLSpace(t) {
				if !p.tolerant {
					return Response{}, nil, fmt.Errorf("%w: text outside <response>", ErrMalformedResponse)
				}
				p.warn("response", "", "", "", "text outside the element")
			}
		}
	}
	if !seen {
		return Response{}, nil, fmt.Errorf("%w: no <response> element", ErrMalformedResponse)
	}
	return resp, p.warnings, nil
}

// skipAfterRoot handles an element after </response>: an error, or in
// tolerant reading a warning and the element skipped.
func (p *parser) skipAfterRoot(t xml.StartElement) error {
	if !p.tolerant {
		return fmt.Errorf("%w: element <%s> after </response>", ErrMalformedResponse, t.Name.Local)
	}
	p.warn("response", "", "", "", fmt.Sprintf("is followed by <%s>, which", truncateForError(t.Name.Local)))
	_, err := p.unknown(strings.ToLower(t.Name.Local), nil)
	return err
}

// parser reads one document.
type parser struct {
	d     *xml.Decoder
	verbs int // verbs read so far, nested prompts included
	// tolerant reads as KooKoo does (see ParseResponseTolerant) and
	// collects warnings instead of failing.
	tolerant bool
	warnings []ParseWarning
}

// maxWarnings caps the warnings kept for one document.
const maxWarnings = 64

func (p *parser) warn(tag, attr, value, def, problem string) {
	if len(p.warnings) < maxWarnings {
		p.warnings = append(p.warnings, ParseWarning{Tag: tag, Attr: attr, Value: truncateForError(value), Default: def, Problem: problem})
	}
}

func (p *parser) root(start xml.StartElement) (Response, error) {
	a := p.attrs("response", start.Attr)
	resp := Response{SID: a.get("sid")}
	var err error
	if resp.Filler, err = p.boolAttr(a, "filler", "no"); err != nil {
		return Response{}, p.malformed("response", err)
	}
	for {
		tok, err := p.d.Token()
		if err != nil {
			return Response{}, fmt.Errorf("%w: %w", ErrMalformedResponse, unexpectedEOF(err))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			v, err := p.verb(t)
			if err != nil {
				return Response{}, err
			}
			resp.Verbs = append(resp.Verbs, v)
		case xml.CharData:
			if !isXMLSpace(t) {
				if !p.tolerant {
					return Response{}, fmt.Errorf("%w: text directly inside <response>", ErrMalformedResponse)
				}
				p.warn("response", "", "", "", "holds text outside any tag")
			}
		case xml.EndElement:
			return resp, nil
		}
	}
}

// knownAttrs are the attributes KooKoo documents per tag (§2.3 of the
// spec), modelled by koel or not; tolerant reading warns about others.
var knownAttrs = map[string][]string{
	"response":    {"sid", "filler"},
	"playtext":    {"lang", "speed", "quality", "type"},
	"say-as":      {"format", "lang"},
	"playaudio":   {},
	"collectdtmf": {"l", "t", "o"},
	"record":      {"format", "silence", "maxduration", "termchar", "option"},
	"dial": {"record", "limittime", "timeout", "moh", "caller_id", "prompttocallednumber",
		"transfer_allowed_by_caller", "callback_onanswered"},
	"conference": {"caller_id", "record", "timeout", "version", "caller_onhold_music"},
	"hangup":     {},
	"gotourl":    {"clean_params"},
	"sendsms":    {"to", "unicode"},
	// <stream> and <start-record> (kookoo-stream.md §1); record is in the
	// voicebot SDK's samples.
	"stream":       {"is_sip", "url", "x-uui", "record"},
	"start-record": {},
}

// verb reads one verb whose start tag has just been read.
func (p *parser) verb(start xml.StartElement) (Verb, error) {
	p.verbs++
	if p.verbs > MaxVerbs {
		return nil, fmt.Errorf("%w: more than %d verbs", ErrTooLarge, MaxVerbs)
	}
	name := strings.ToLower(start.Name.Local)
	if _, known := knownAttrs[name]; !known || name == "response" {
		return p.unknown(name, start.Attr)
	}
	a := p.attrs(name, start.Attr)
	switch name {
	case "playtext":
		speed, err := p.intAttr(a, "speed", 9, 100, "2")
		if err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return PlayText{Text: text, Lang: a.get("lang"), Speed: speed, Quality: a.get("quality"), Type: a.get("type")}, err
	case "say-as":
		text, err := p.text(name)
		return SayAs{Value: text, Format: a.get("format"), Lang: a.get("lang")}, err
	case "playaudio":
		text, err := p.text(name)
		return PlayAudio{URL: text}, err
	case "collectdtmf":
		return p.collectDTMF(a)
	case "record":
		silence, err1 := p.durationAttr(a, "silence", time.Second, time.Minute, "4")
		maxDur, err2 := p.durationAttr(a, "maxduration", time.Second, time.Hour, "60")
		if err := errors.Join(err1, err2); err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return Record{Name: text, Format: p.enumAttr(a, "format", "wav", "wav", "mp3"), Silence: silence, MaxDuration: maxDur,
			TermChar: p.keyAttr(a, "termchar", "#"), Option: p.enumAttr(a, "option", "", "k")}, err
	case "dial":
		rec, err1 := p.boolAttr(a, "record", "false")
		limit, err2 := p.durationAttr(a, "limittime", time.Second, 24*time.Hour, "1000")
		timeout, err3 := p.durationAttr(a, "timeout", time.Second, 10*time.Minute, "30")
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return Dial{Number: text, Record: rec, LimitTime: limit, Timeout: timeout,
			MOH:      p.enumAttr(a, "moh", "default", "default", "ring", "normal"),
			CallerID: a.get("caller_id"), PromptToCalledNumber: a.get("prompttocallednumber")}, err
	case "conference":
		rec, err1 := p.boolAttr(a, "record", "false")
		timeout, err2 := p.durationAttr(a, "timeout", time.Millisecond, 24*time.Hour, "-1 (none)")
		if err := errors.Join(err1, err2); err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return Conference{Name: text, CallerID: a.get("caller_id"), Record: rec, Timeout: timeout}, err
	case "hangup":
		_, err := p.text(name)
		return Hangup{}, err
	case "gotourl":
		text, err := p.text(name)
		return GotoURL{URL: text}, err
	case "sendsms":
		uni, err := p.boolAttr(a, "unicode", "false")
		if err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return SendSMS{To: a.get("to"), Text: text, Unicode: uni}, err
	case "stream":
		return p.stream(a.vals)
	case "start-record":
		_, err := p.text(name)
		return StartRecord{}, err
	default:
		return p.unknown(name, start.Attr)
	}
}

func (p *parser) collectDTMF(a attrs) (Verb, error) {
	const name = "collectdtmf"
	l, err1 := p.intAttr(a, "l", maxKeys, maxParsedCount, "none (keys until t or o)")
	o, err2 := p.durationAttr(a, "o", time.Millisecond, 10*time.Minute, "4000")
	if err := errors.Join(err1, err2); err != nil {
		return nil, p.malformed(name, err)
	}
	c := CollectDTMF{MaxDigits: l, TermChar: p.keyAttr(a, "t", "none"), Timeout: o}
	for {
		tok, err := p.d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, unexpectedEOF(err))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch child := strings.ToLower(t.Name.Local); child {
			case "playtext", "playaudio", "say-as":
				v, err := p.verb(t)
				if err != nil {
					return nil, err
				}
				c.Prompts = append(c.Prompts, v)
			default:
				if !p.tolerant {
					return nil, p.malformed(name, fmt.Errorf("<%s> cannot be nested", child))
				}
				p.warn(name, "", "", "", fmt.Sprintf("cannot hold <%s>, which", truncateForError(child)))
				if _, err := p.unknown(child, nil); err != nil {
					return nil, err
				}
			}
		case xml.CharData:
			if !isXMLSpace(t) {
				if !p.tolerant {
					return nil, p.malformed(name, errors.New("text directly inside (prompts go in <playtext> or <playaudio>)"))
				}
				p.warn(name, "", "", "", "holds text outside <playtext> or <playaudio>")
			}
		case xml.EndElement:
			return c, nil
		}
	}
}

// text reads the character data up to the end of the current element and
// trims it; a nested element is an error, or in tolerant reading gives up
// its text.
func (p *parser) text(name string) (string, error) {
	var sb strings.Builder
	for {
		tok, err := p.d.Token()
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrMalformedResponse, unexpectedEOF(err))
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.StartElement:
			if !p.tolerant {
				return "", p.malformed(name, fmt.Errorf("unexpected element <%s> inside", t.Name.Local))
			}
			p.warn(name, "", "", "", fmt.Sprintf("holds <%s>; its text is read, the tag", truncateForError(t.Name.Local)))
			u, err := p.unknown(strings.ToLower(t.Name.Local), nil)
			if err != nil {
				return "", err
			}
			sb.WriteString(u.(Unknown).Body)
		case xml.EndElement:
			return strings.TrimSpace(sb.String()), nil
		}
	}
}

// unknown reads a tag koel does not model, flattening its content to text.
func (p *parser) unknown(name string, attrs []xml.Attr) (Verb, error) {
	u := Unknown{Tag: name}
	for _, at := range attrs {
		if u.Attrs == nil {
			u.Attrs = make(map[string]string, len(attrs))
		}
		k := strings.ToLower(at.Name.Local)
		if _, dup := u.Attrs[k]; !dup {
			u.Attrs[k] = at.Value
		}
	}
	var sb strings.Builder
	depth := 1
	for depth > 0 {
		tok, err := p.d.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, unexpectedEOF(err))
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.StartElement:
			depth++
			if depth > maxDepth {
				return nil, p.malformed(name, fmt.Errorf("nested deeper than %d", maxDepth))
			}
		case xml.EndElement:
			depth--
		}
	}
	u.Body = strings.TrimSpace(sb.String())
	return u, nil
}

func (p *parser) malformed(tag string, err error) error {
	return fmt.Errorf("%w: <%s>: %w", ErrMalformedResponse, tag, err)
}

// unexpectedEOF turns io.EOF inside an element into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// attrs are a start tag's attributes by lower-cased name, values trimmed;
// the first of duplicate names wins.
type attrs struct {
	tag   string
	vals  map[string]string
	names map[string]string // as written
}

func (a attrs) get(k string) string { return a.vals[k] }

// attrs reads a tag's attributes; tolerant reading warns about attributes
// KooKoo does not document for the tag.
func (p *parser) attrs(tag string, list []xml.Attr) attrs {
	a := attrs{tag: tag, vals: make(map[string]string, len(list)), names: make(map[string]string, len(list))}
	for _, at := range list {
		k := strings.ToLower(at.Name.Local)
		if _, dup := a.vals[k]; dup {
			continue
		}
		a.vals[k], a.names[k] = strings.TrimSpace(at.Value), at.Name.Local
		if p.tolerant && at.Name.Space == "" && !slices.Contains(knownAttrs[tag], k) {
			p.warn(tag, at.Name.Local, at.Value, "", "is not a KooKoo attribute of this tag")
		}
	}
	return a
}

// bad reports an attribute value that cannot be used: an error in strict
// reading, a warning (and nil) in tolerant reading.
func (p *parser) bad(a attrs, k, def, problem string) error {
	if !p.tolerant {
		return fmt.Errorf("%s=%q %s", k, truncateForError(a.vals[k]), problem)
	}
	p.warn(a.tag, a.names[k], a.vals[k], def, problem)
	return nil
}

// intAttr reads a non-negative integer; "" and negative values (KooKoo's -1
// for "unset") give 0. Over limit (tolerant) or capAt (strict) it is
// unusable, as is a non-integer; def describes KooKoo's default.
func (p *parser) intAttr(a attrs, k string, limit, capAt int, def string) (int, error) {
	s := a.vals[k]
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, p.bad(a, k, def, "is not an integer")
	}
	if n < 0 {
		return 0, nil
	}
	if !p.tolerant {
		limit = capAt
	}
	if n > limit {
		return 0, p.bad(a, k, def, fmt.Sprintf("is over %d", limit))
	}
	return n, nil
}

// durationAttr reads an integer number of units, up to limit in tolerant
// reading.
func (p *parser) durationAttr(a attrs, k string, unit, limit time.Duration, def string) (time.Duration, error) {
	capAt := maxParsedSeconds
	if unit < time.Second {
		capAt = maxParsedMillis
	}
	n, err := p.intAttr(a, k, int(limit/unit), capAt, def)
	return time.Duration(n) * unit, err
}

// boolAttr reads true/yes/1/on or false/no/0/off, any case; "" is false.
func (p *parser) boolAttr(a attrs, k, def string) (bool, error) {
	switch strings.ToLower(a.vals[k]) {
	case "true", "yes", "1", "on":
		return true, nil
	case "", "false", "no", "0", "off":
		return false, nil
	}
	return false, p.bad(a, k, def, "is not a boolean")
}

// enumAttr reads a value from a closed set, any case. Strict reading keeps
// the value as written (Validate judges it); tolerant reading gives the
// set's spelling, or "" (KooKoo's default) with a warning.
func (p *parser) enumAttr(a attrs, k, def string, allowed ...string) string {
	s := a.vals[k]
	if !p.tolerant || s == "" {
		return s
	}
	for _, v := range allowed {
		if strings.EqualFold(s, v) {
			return v
		}
	}
	_ = p.bad(a, k, def, "is not one of "+strings.Join(allowed, ", "))
	return ""
}

// keyAttr reads one keypad key; tolerant reading gives "" (KooKoo's
// default) for anything else.
func (p *parser) keyAttr(a attrs, k, def string) string {
	s := a.vals[k]
	if !p.tolerant || s == "" || checkKey(k, s) == nil {
		return s
	}
	_ = p.bad(a, k, def, "is not one keypad key")
	return ""
}

func isXMLSpace(b []byte) bool { return len(bytes.Trim(b, " \t\r\n")) == 0 }

// truncateForError shortens s for an error message.
func truncateForError(s string) string {
	const n = 32
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
