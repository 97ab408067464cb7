package kookoo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
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
	if len(data) > MaxResponseBytes {
		return Response{}, fmt.Errorf("%w: response over %d bytes", ErrTooLarge, MaxResponseBytes)
	}
	if len(bytes.Trim(data, " \t\r\n")) == 0 {
		return Response{}, ErrEmptyResponse
	}
	p := &parser{d: xml.NewDecoder(bytes.NewReader(data))}
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
			return Response{}, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if seen {
				return Response{}, fmt.Errorf("%w: element <%s> after </response>", ErrMalformedResponse, t.Name.Local)
			}
			if strings.ToLower(t.Name.Local) != "response" {
				return Response{}, fmt.Errorf("%w: root element is <%s>, not <response>", ErrMalformedResponse, t.Name.Local)
			}
			if resp, err = p.root(t); err != nil {
				return Response{}, err
			}
			seen = true
		case xml.CharData:
			if !isXMLSpace(t) {
				return Response{}, fmt.Errorf("%w: text outside <response>", ErrMalformedResponse)
			}
		}
	}
	if !seen {
		return Response{}, fmt.Errorf("%w: no <response> element", ErrMalformedResponse)
	}
	return resp, nil
}

// parser reads one document.
type parser struct {
	d     *xml.Decoder
	verbs int // verbs read so far, nested prompts included
}

func (p *parser) root(start xml.StartElement) (Response, error) {
	a := attrMap(start.Attr)
	resp := Response{SID: a["sid"]}
	var err error
	if resp.Filler, err = boolAttr("filler", a["filler"]); err != nil {
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
				return Response{}, fmt.Errorf("%w: text directly inside <response>", ErrMalformedResponse)
			}
		case xml.EndElement:
			return resp, nil
		}
	}
}

// verb reads one verb whose start tag has just been read.
func (p *parser) verb(start xml.StartElement) (Verb, error) {
	p.verbs++
	if p.verbs > MaxVerbs {
		return nil, fmt.Errorf("%w: more than %d verbs", ErrTooLarge, MaxVerbs)
	}
	name := strings.ToLower(start.Name.Local)
	a := attrMap(start.Attr)
	switch name {
	case "playtext":
		speed, err := intAttr("speed", a["speed"], 100)
		if err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return PlayText{Text: text, Lang: a["lang"], Speed: speed, Quality: a["quality"], Type: a["type"]}, err
	case "say-as":
		text, err := p.text(name)
		return SayAs{Value: text, Format: a["format"], Lang: a["lang"]}, err
	case "playaudio":
		text, err := p.text(name)
		return PlayAudio{URL: text}, err
	case "collectdtmf":
		return p.collectDTMF(a)
	case "record":
		silence, err1 := durationAttr("silence", a["silence"], time.Second)
		maxDur, err2 := durationAttr("maxduration", a["maxduration"], time.Second)
		if err := errors.Join(err1, err2); err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return Record{Name: text, Format: a["format"], Silence: silence, MaxDuration: maxDur,
			TermChar: a["termchar"], Option: a["option"]}, err
	case "dial":
		rec, err1 := boolAttr("record", a["record"])
		limit, err2 := durationAttr("limittime", a["limittime"], time.Second)
		timeout, err3 := durationAttr("timeout", a["timeout"], time.Second)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return Dial{Number: text, Record: rec, LimitTime: limit, Timeout: timeout, MOH: a["moh"],
			CallerID: a["caller_id"], PromptToCalledNumber: a["prompttocallednumber"]}, err
	case "conference":
		rec, err1 := boolAttr("record", a["record"])
		timeout, err2 := durationAttr("timeout", a["timeout"], time.Millisecond)
		if err := errors.Join(err1, err2); err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return Conference{Name: text, CallerID: a["caller_id"], Record: rec, Timeout: timeout}, err
	case "hangup":
		_, err := p.text(name)
		return Hangup{}, err
	case "gotourl":
		text, err := p.text(name)
		return GotoURL{URL: text}, err
	case "sendsms":
		uni, err := boolAttr("unicode", a["unicode"])
		if err != nil {
			return nil, p.malformed(name, err)
		}
		text, err := p.text(name)
		return SendSMS{To: a["to"], Text: text, Unicode: uni}, err
	case "stream":
		return p.stream(a)
	case "start-record":
		_, err := p.text(name)
		return StartRecord{}, err
	default:
		return p.unknown(name, start.Attr)
	}
}

func (p *parser) collectDTMF(a map[string]string) (Verb, error) {
	const name = "collectdtmf"
	l, err1 := intAttr("l", a["l"], maxParsedCount)
	o, err2 := durationAttr("o", a["o"], time.Millisecond)
	if err := errors.Join(err1, err2); err != nil {
		return nil, p.malformed(name, err)
	}
	c := CollectDTMF{MaxDigits: l, TermChar: a["t"], Timeout: o}
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
				return nil, p.malformed(name, fmt.Errorf("<%s> cannot be nested", child))
			}
		case xml.CharData:
			if !isXMLSpace(t) {
				return nil, p.malformed(name, errors.New("text directly inside (prompts go in <playtext> or <playaudio>)"))
			}
		case xml.EndElement:
			return c, nil
		}
	}
}

// text reads the character data up to the end of the current element and
// trims it; a nested element is an error.
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
			return "", p.malformed(name, fmt.Errorf("unexpected element <%s> inside", t.Name.Local))
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

// attrMap maps lower-cased attribute names to their trimmed values; the
// first of duplicate names wins.
func attrMap(attrs []xml.Attr) map[string]string {
	m := make(map[string]string, len(attrs))
	for _, a := range attrs {
		k := strings.ToLower(a.Name.Local)
		if _, dup := m[k]; !dup {
			m[k] = strings.TrimSpace(a.Value)
		}
	}
	return m
}

// intAttr reads a non-negative integer; "" and negative values (KooKoo's -1
// for "unset") give 0.
func intAttr(name, s string, max int) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", name, truncateForError(s))
	}
	if n < 0 {
		return 0, nil
	}
	if n > max {
		return 0, fmt.Errorf("%s=%d over %d", name, n, max)
	}
	return n, nil
}

// durationAttr reads an integer number of units.
func durationAttr(name, s string, unit time.Duration) (time.Duration, error) {
	max := maxParsedSeconds
	if unit < time.Second {
		max = maxParsedMillis
	}
	n, err := intAttr(name, s, max)
	return time.Duration(n) * unit, err
}

// boolAttr reads true/yes/1/on or false/no/0/off, any case; "" is false.
func boolAttr(name, s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "1", "on":
		return true, nil
	case "", "false", "no", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q is not a boolean", name, truncateForError(s))
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
