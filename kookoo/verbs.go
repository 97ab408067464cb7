package kookoo

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Verb is one tag of a KooKoo response (§2.3). The set is sealed: the verbs
// are the value types of this package ([PlayText], [SayAs], [PlayAudio],
// [CollectDTMF], [Record], [Dial], [Conference], [Hangup], [GotoURL],
// [SendSMS], [Stream], [StartRecord], [Unknown]). Use values, not pointers.
type Verb interface {
	// TagName is the lower-case tag name. (It is not called Name because
	// Record and Conference have a Name field.)
	TagName() string
	// render appends the verb's XML.
	render(b *bytes.Buffer)
	// validate checks the verb on its own.
	validate() error
}

// Caps that [Response.Validate] enforces on verb content.
const (
	// MaxTextBytes caps the text of playtext, say-as and sendsms.
	MaxTextBytes = 4 << 10
	// MaxURLBytes caps every URL in a response.
	MaxURLBytes = 2 << 10
	// maxTokenBytes caps short attribute values (lang, type, format...).
	maxTokenBytes = 64
	// maxNumberDigits caps dialled numbers and caller ids.
	maxNumberDigits = 20
	// maxKeys caps collectdtmf l.
	maxKeys = 64
)

// PlayText speaks Text with KooKoo's text-to-speech (§2.3 playtext).
type PlayText struct {
	// Text is what to say. Required.
	Text string
	// Lang is the TTS language: EN, HI... (old) or en-IN, hi-IN (new).
	// Empty means KooKoo's default.
	Lang string
	// Speed is the voice rate, 1-9 (sources disagree on the range; 0
	// leaves it to KooKoo).
	Speed int
	// Quality is best, normal, high, medium or low. Empty: default.
	Quality string
	// Type selects the engine: ggl, polly, or a voice name. Empty: default.
	Type string
}

// TagName implements [Verb].
func (PlayText) TagName() string { return "playtext" }

func (v PlayText) render(b *bytes.Buffer) {
	xmlOpen(b, "playtext")
	xmlAttr(b, "lang", v.Lang)
	if v.Speed != 0 {
		xmlAttr(b, "speed", strconv.Itoa(v.Speed))
	}
	xmlAttr(b, "quality", v.Quality)
	xmlAttr(b, "type", v.Type)
	xmlTextAndClose(b, "playtext", v.Text)
}

func (v PlayText) validate() error {
	if err := checkText(v.Text); err != nil {
		return err
	}
	if v.Speed < 0 || v.Speed > 9 {
		return fmt.Errorf("speed %d outside 0-9", v.Speed)
	}
	return checkTokens(map[string]string{"lang": v.Lang, "quality": v.Quality, "type": v.Type})
}

// SayAs speaks Value in a format: 1 number, 201/202/204/222 dates, 401/402
// currency, 501 digit by digit (§2.3 say-as).
type SayAs struct {
	// Value is what to say, in the format's input form (e.g. YYYYMMDD).
	Value string
	// Format is KooKoo's numeric format code, e.g. "501". Required.
	Format string
	// Lang is the language, e.g. EN. Empty: default.
	Lang string
}

// TagName implements [Verb].
func (SayAs) TagName() string { return "say-as" }

func (v SayAs) render(b *bytes.Buffer) {
	xmlOpen(b, "say-as")
	xmlAttr(b, "format", v.Format)
	xmlAttr(b, "lang", v.Lang)
	xmlTextAndClose(b, "say-as", v.Value)
}

func (v SayAs) validate() error {
	if err := checkText(v.Value); err != nil {
		return err
	}
	if v.Format == "" || len(v.Format) > 8 || !allDigits(v.Format) {
		return fmt.Errorf("format %q is not a numeric format code", v.Format)
	}
	return checkTokens(map[string]string{"lang": v.Lang})
}

// PlayAudio plays the WAV file at URL (8 kHz 16-bit mono PCM; §2.3
// playaudio).
type PlayAudio struct {
	// URL is the absolute http(s) URL of the file. Required.
	URL string
}

// TagName implements [Verb].
func (PlayAudio) TagName() string { return "playaudio" }

func (v PlayAudio) render(b *bytes.Buffer) {
	xmlOpen(b, "playaudio")
	xmlTextAndClose(b, "playaudio", v.URL)
}

func (v PlayAudio) validate() error { return checkURL(v.URL) }

// CollectDTMF plays its prompts and collects keys; KooKoo then sends
// GotDTMF (§2.3 collectdtmf).
type CollectDTMF struct {
	// MaxDigits is l, the most keys to collect (0: KooKoo's default).
	MaxDigits int
	// TermChar is t, the key that ends input, e.g. "#".
	TermChar string
	// Timeout is o, how long to wait for input; rendered in milliseconds
	// (0: KooKoo's default of 4000 ms).
	Timeout time.Duration
	// Prompts are played while waiting: PlayText, PlayAudio or SayAs.
	Prompts []Verb
}

// TagName implements [Verb].
func (CollectDTMF) TagName() string { return "collectdtmf" }

func (v CollectDTMF) render(b *bytes.Buffer) {
	xmlOpen(b, "collectdtmf")
	if v.MaxDigits != 0 {
		xmlAttr(b, "l", strconv.Itoa(v.MaxDigits))
	}
	xmlAttr(b, "t", v.TermChar)
	if v.Timeout > 0 {
		xmlAttr(b, "o", strconv.FormatInt(v.Timeout.Milliseconds(), 10))
	}
	b.WriteByte('>')
	for _, p := range v.Prompts {
		if !isNilVerb(p) {
			p.render(b)
		}
	}
	xmlClose(b, "collectdtmf")
}

func (v CollectDTMF) validate() error {
	if v.MaxDigits < 0 || v.MaxDigits > maxKeys {
		return fmt.Errorf("l %d outside 0-%d", v.MaxDigits, maxKeys)
	}
	if err := checkKey("t", v.TermChar); err != nil {
		return err
	}
	if err := checkDuration("o", v.Timeout, time.Millisecond, 10*time.Minute); err != nil {
		return err
	}
	for i, p := range v.Prompts {
		switch p.(type) {
		case PlayText, PlayAudio, SayAs:
		default:
			return fmt.Errorf("prompt %d: %s cannot be nested in collectdtmf", i, verbName(p))
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("prompt %d <%s>: %w", i, p.TagName(), err)
		}
	}
	return nil
}

// Record records the caller into a file named Name; KooKoo then sends Record
// with the file's URL (§2.3 record).
type Record struct {
	// Name is the file name, without extension, unique per recording.
	// Required; letters, digits, '.', '_' and '-'.
	Name string
	// Format is wav or mp3 (empty: KooKoo's default, wav).
	Format string
	// Silence is how much silence ends the recording; rendered in whole
	// seconds, rounded up.
	Silence time.Duration
	// MaxDuration is the longest recording; rendered in whole seconds,
	// rounded up.
	MaxDuration time.Duration
	// TermChar is a key that stops the recording, e.g. "#".
	TermChar string
	// Option is the old API's option; "k" keeps the recording after a
	// hang-up.
	Option string
}

// TagName implements [Verb].
func (Record) TagName() string { return "record" }

func (v Record) render(b *bytes.Buffer) {
	xmlOpen(b, "record")
	xmlAttr(b, "format", v.Format)
	xmlSecondsAttr(b, "silence", v.Silence)
	xmlSecondsAttr(b, "maxduration", v.MaxDuration)
	xmlAttr(b, "termchar", v.TermChar)
	xmlAttr(b, "option", v.Option)
	xmlTextAndClose(b, "record", v.Name)
}

func (v Record) validate() error {
	if !validFileName(v.Name) {
		return fmt.Errorf("file name %q must be 1-%d characters of [A-Za-z0-9._-]", v.Name, maxTokenBytes*2)
	}
	switch v.Format {
	case "", "wav", "mp3":
	default:
		return fmt.Errorf("format %q is neither wav nor mp3", v.Format)
	}
	if err := checkDuration("silence", v.Silence, time.Second, time.Minute); err != nil {
		return err
	}
	if err := checkDuration("maxduration", v.MaxDuration, time.Second, time.Hour); err != nil {
		return err
	}
	if err := checkKey("termchar", v.TermChar); err != nil {
		return err
	}
	if v.Option != "" && v.Option != "k" {
		return fmt.Errorf("option %q is not k", v.Option)
	}
	return nil
}

// Dial connects the caller to Number; KooKoo sends Dial when that leg ends
// (§2.3 dial). Paid accounts only.
type Dial struct {
	// Number is the number to call, 0-prefixed for STD. Required.
	Number string
	// Record records the dialled conversation (URL in the Dial event).
	Record bool
	// LimitTime caps the call after it is answered; rendered in seconds,
	// rounded up (0: KooKoo's default, 1000 s).
	LimitTime time.Duration
	// Timeout is the ring timeout; rendered in seconds, rounded up (the
	// unit is unconfirmed, §2.3; every sample sends about 30).
	Timeout time.Duration
	// MOH is default (music on hold), ring or normal.
	MOH string
	// CallerID is the number shown to the called party; it must be a DID
	// of the KooKoo account.
	CallerID string
	// PromptToCalledNumber is "no" or the URL of audio played to the
	// called party.
	PromptToCalledNumber string
}

// TagName implements [Verb].
func (Dial) TagName() string { return "dial" }

func (v Dial) render(b *bytes.Buffer) {
	xmlOpen(b, "dial")
	if v.Record {
		xmlAttr(b, "record", "true")
	}
	xmlSecondsAttr(b, "limittime", v.LimitTime)
	xmlSecondsAttr(b, "timeout", v.Timeout)
	xmlAttr(b, "moh", v.MOH)
	xmlAttr(b, "caller_id", v.CallerID)
	xmlAttr(b, "promptToCalledNumber", v.PromptToCalledNumber)
	xmlTextAndClose(b, "dial", v.Number)
}

func (v Dial) validate() error {
	if !validNumber(v.Number) {
		return fmt.Errorf("number must be up to %d digits, optionally after '+'", maxNumberDigits)
	}
	if err := checkDuration("limittime", v.LimitTime, time.Second, 24*time.Hour); err != nil {
		return err
	}
	if err := checkDuration("timeout", v.Timeout, time.Second, 10*time.Minute); err != nil {
		return err
	}
	switch v.MOH {
	case "", "default", "ring", "normal":
	default:
		return fmt.Errorf("moh %q is not default, ring or normal", v.MOH)
	}
	if v.CallerID != "" && !validNumber(v.CallerID) {
		return fmt.Errorf("caller_id must be up to %d digits", maxNumberDigits)
	}
	if p := v.PromptToCalledNumber; p != "" && p != "no" {
		if err := checkURL(p); err != nil {
			return fmt.Errorf("promptToCalledNumber: %w", err)
		}
	}
	return nil
}

// Conference puts the caller in a conference; KooKoo sends Conference when
// the caller leaves with '#' (§2.3 conference).
type Conference struct {
	// Name is the conference number or name. Required.
	Name string
	// CallerID is the caller id to use.
	CallerID string
	// Record records the conference.
	Record bool
	// Timeout is rendered in milliseconds, the unit PHP documents
	// (unconfirmed); 0 leaves it to KooKoo.
	Timeout time.Duration
}

// TagName implements [Verb].
func (Conference) TagName() string { return "conference" }

func (v Conference) render(b *bytes.Buffer) {
	xmlOpen(b, "conference")
	xmlAttr(b, "caller_id", v.CallerID)
	if v.Record {
		xmlAttr(b, "record", "true")
	}
	if v.Timeout > 0 {
		xmlAttr(b, "timeout", strconv.FormatInt(v.Timeout.Milliseconds(), 10))
	}
	xmlTextAndClose(b, "conference", v.Name)
}

func (v Conference) validate() error {
	if !validFileName(v.Name) {
		return fmt.Errorf("conference name %q must be 1-%d characters of [A-Za-z0-9._-]", v.Name, maxTokenBytes*2)
	}
	if v.CallerID != "" && !validNumber(v.CallerID) {
		return fmt.Errorf("caller_id must be up to %d digits", maxNumberDigits)
	}
	return checkDuration("timeout", v.Timeout, time.Millisecond, 24*time.Hour)
}

// Hangup ends the call; KooKoo then sends Disconnect (§2.3 hangup).
type Hangup struct{}

// TagName implements [Verb].
func (Hangup) TagName() string { return "hangup" }

func (Hangup) render(b *bytes.Buffer) { b.WriteString("<hangup/>") }

func (Hangup) validate() error { return nil }

// GotoURL moves the call flow to URL; after an input tag it says where the
// result goes (§2.3 gotourl, §3.4).
type GotoURL struct {
	// URL is the absolute http(s) URL of the next application. Required.
	URL string
}

// TagName implements [Verb].
func (GotoURL) TagName() string { return "gotourl" }

func (v GotoURL) render(b *bytes.Buffer) {
	xmlOpen(b, "gotourl")
	xmlTextAndClose(b, "gotourl", v.URL)
}

func (v GotoURL) validate() error { return checkURL(v.URL) }

// SendSMS sends Text to To (§2.3 sendsms). No event follows.
type SendSMS struct {
	// To is the recipient's number. Required.
	To string
	// Text is the message. Required.
	Text string
	// Unicode marks a message outside GSM-7 (rendered unicode="true").
	Unicode bool
}

// TagName implements [Verb].
func (SendSMS) TagName() string { return "sendsms" }

func (v SendSMS) render(b *bytes.Buffer) {
	xmlOpen(b, "sendsms")
	xmlAttr(b, "to", v.To)
	if v.Unicode {
		xmlAttr(b, "unicode", "true")
	}
	xmlTextAndClose(b, "sendsms", v.Text)
}

func (v SendSMS) validate() error {
	if !validNumber(v.To) {
		return fmt.Errorf("to must be up to %d digits, optionally after '+'", maxNumberDigits)
	}
	return checkText(v.Text)
}

// Unknown is a tag koel does not model (recognize, stream, start-record,
// cctransfer...). Its content is kept as text: nested elements are
// flattened to their text. Tag and attribute names are lower-case ASCII
// XML names; anything else is left out of the rendered XML.
type Unknown struct {
	// Tag is the lower-case tag name.
	Tag string
	// Body is the text content.
	Body string
	// Attrs are the attributes by lower-case name.
	Attrs map[string]string
}

// TagName implements [Verb].
func (v Unknown) TagName() string { return v.Tag }

func (v Unknown) render(b *bytes.Buffer) {
	if !validXMLName(v.Tag) {
		return
	}
	xmlOpen(b, v.Tag)
	for _, k := range slices.Sorted(maps.Keys(v.Attrs)) {
		if validXMLName(k) {
			xmlAttrAlways(b, k, v.Attrs[k])
		}
	}
	if v.Body == "" {
		b.WriteString("/>")
		return
	}
	xmlTextAndClose(b, v.Tag, v.Body)
}

func (v Unknown) validate() error {
	if !validXMLName(v.Tag) {
		return fmt.Errorf("tag %q is not a lower-case XML name", v.Tag)
	}
	if modelledTags[v.Tag] || v.Tag == "response" {
		return fmt.Errorf("tag %q has its own verb type; Unknown is for other tags", v.Tag)
	}
	for k := range v.Attrs {
		if !validXMLName(k) {
			return fmt.Errorf("attribute %q is not a lower-case XML name", k)
		}
	}
	if len(v.Body) > MaxTextBytes {
		return fmt.Errorf("body over %d bytes", MaxTextBytes)
	}
	return nil
}

// modelledTags are the tags with their own verb type.
var modelledTags = map[string]bool{
	"playtext": true, "say-as": true, "playaudio": true, "collectdtmf": true, "record": true,
	"dial": true, "conference": true, "hangup": true, "gotourl": true, "sendsms": true,
	"stream": true, "start-record": true, // stream_verb.go
}

// --- rendering helpers ---

func xmlOpen(b *bytes.Buffer, name string) {
	b.WriteByte('<')
	b.WriteString(name)
}

func xmlClose(b *bytes.Buffer, name string) {
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
}

// xmlAttr writes name="value", escaped, unless value is empty.
func xmlAttr(b *bytes.Buffer, name, value string) {
	if value != "" {
		xmlAttrAlways(b, name, value)
	}
}

func xmlAttrAlways(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	escapeXML(b, value)
	b.WriteByte('"')
}

// xmlSecondsAttr writes d in whole seconds, rounded up, unless d <= 0.
func xmlSecondsAttr(b *bytes.Buffer, name string, d time.Duration) {
	if d > 0 {
		xmlAttr(b, name, strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
}

// xmlTextAndClose closes the start tag, writes text escaped and closes the element.
func xmlTextAndClose(b *bytes.Buffer, name, text string) {
	b.WriteByte('>')
	escapeXML(b, text)
	xmlClose(b, name)
}

// escapeXML writes s as XML character data: markup characters and line breaks
// are escaped, and characters XML cannot hold become U+FFFD.
func escapeXML(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer never fails
}

// --- validation helpers ---

func checkText(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty text")
	case len(s) > MaxTextBytes:
		return fmt.Errorf("text over %d bytes", MaxTextBytes)
	}
	return nil
}

func checkURL(s string) error {
	switch {
	case len(s) > MaxURLBytes:
		return fmt.Errorf("URL over %d bytes", MaxURLBytes)
	case !isHTTPURL(s):
		return fmt.Errorf("not an absolute http(s) URL")
	}
	return nil
}

func checkTokens(m map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if v := m[k]; v != "" && !validToken(v) {
			return fmt.Errorf("%s %q must be 1-%d characters of [A-Za-z0-9._-]", k, v, maxTokenBytes)
		}
	}
	return nil
}

// checkKey accepts "" or one keypad key.
func checkKey(name, k string) error {
	if k == "" {
		return nil
	}
	if len(k) != 1 || !isKey(k[0]) {
		return fmt.Errorf("%s %q is not one keypad key", name, k)
	}
	return nil
}

func isKey(c byte) bool { return (c >= '0' && c <= '9') || c == '*' || c == '#' }

// checkDuration accepts 0 or a positive duration up to max that is a whole
// number of units (so that rendering loses nothing).
func checkDuration(name string, d, unit, max time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%s %v is negative", name, d)
	case d > max:
		return fmt.Errorf("%s %v over %v", name, d, max)
	case d%unit != 0:
		return fmt.Errorf("%s %v is not a whole number of %v", name, d, unit)
	}
	return nil
}

func validToken(s string) bool { return len(s) <= maxTokenBytes && validFileName(s) }

func validFileName(s string) bool {
	if s == "" || len(s) > 2*maxTokenBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func validNumber(s string) bool {
	if len(s) > 0 && s[0] == '+' {
		s = s[1:]
	}
	return len(s) > 0 && len(s) <= maxNumberDigits && allDigits(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validXMLName accepts lower-case ASCII names without a namespace prefix:
// [a-z_][a-z0-9._-]*, at most 64 bytes.
func validXMLName(s string) bool {
	if s == "" || len(s) > maxTokenBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	// "xml..." names are reserved.
	return len(s) < 3 || s[:3] != "xml"
}
