package kookoo

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Event is the value of the event parameter: what KooKoo just did (§1.3).
type Event string

// KooKoo events (§1.3). EventNone is a follow-up request that carries no
// event parameter, sent after a response with no input tag (§3.1).
const (
	EventNewCall    Event = "NewCall"
	EventRecord     Event = "Record"
	EventGotDTMF    Event = "GotDTMF"
	EventDial       Event = "Dial"
	EventHangup     Event = "Hangup"
	EventDisconnect Event = "Disconnect"
	EventConference Event = "Conference"
	EventRecognize  Event = "Recognize"
	EventStream     Event = "Stream"
	EventNone       Event = ""
)

// knownEvents maps the lower-cased event name to its canonical spelling.
var knownEvents = map[string]Event{
	"newcall":    EventNewCall,
	"record":     EventRecord,
	"gotdtmf":    EventGotDTMF,
	"dial":       EventDial,
	"hangup":     EventHangup,
	"disconnect": EventDisconnect,
	"conference": EventConference,
	"recognize":  EventRecognize,
	"stream":     EventStream,
}

// Known reports whether e is one of the events KooKoo sends, or EventNone.
func (e Event) Known() bool {
	if e == EventNone {
		return true
	}
	c, ok := knownEvents[strings.ToLower(string(e))]
	return ok && c == e
}

// Ended reports whether the call is over when this event arrives (Hangup,
// Disconnect): the answer is an empty 200 (§1.3).
func (e Event) Ended() bool { return e == EventHangup || e == EventDisconnect }

// Size caps applied by [ParseRequest] and [ParseValues].
const (
	// MaxRequestBytes caps the query string and, separately, a POST body.
	MaxRequestBytes = 64 << 10
	// MaxValueBytes caps the data and message parameters and any parameter
	// koel does not know.
	MaxValueBytes = 4 << 10
	// MaxShortValueBytes caps every other known parameter (sid, cid,
	// event, status...).
	MaxShortValueBytes = 256
	// MaxParams caps the number of distinct parameter names.
	MaxParams = 64
	// maxValues caps the number of values over all names.
	maxValues = 256
	// maxSIDBytes caps the sid.
	maxSIDBytes = 128
	// maxDurationSeconds caps the duration parameters (about 115 days).
	maxDurationSeconds = 10_000_000
)

// Parameter names KooKoo sends (§1.2).
const (
	paramEvent             = "event"
	paramSID               = "sid"
	paramCID               = "cid"
	paramCalledNumber      = "called_number"
	paramCIDE164           = "cid_e164"
	paramCIDType           = "cid_type"
	paramCircle            = "circle"
	paramOperator          = "operator"
	paramCIDCountry        = "cid_country"
	paramCIDCountryName    = "cid_countryname"
	paramRequestTime       = "request_time"
	paramData              = "data"
	paramStatus            = "status"
	paramProcess           = "process"
	paramMessage           = "message"
	paramOutboundSID       = "outbound_sid"
	paramCallDuration      = "callduration"
	paramTotalCallDuration = "total_call_duration"
	paramRecordDuration    = "record_duration"
)

// longParams may hold up to MaxValueBytes; the other known parameters are
// capped at MaxShortValueBytes.
var longParams = map[string]bool{paramData: true, paramMessage: true}

// knownParams lists every parameter a Request has a field for.
var knownParams = map[string]bool{
	paramEvent: true, paramSID: true, paramCID: true, paramCalledNumber: true,
	paramCIDE164: true, paramCIDType: true, paramCircle: true, paramOperator: true,
	paramCIDCountry: true, paramCIDCountryName: true, paramRequestTime: true,
	paramData: true, paramStatus: true, paramProcess: true, paramMessage: true,
	paramOutboundSID: true, paramCallDuration: true, paramTotalCallDuration: true,
	paramRecordDuration: true,
}

// Request is one request from KooKoo to the application URL (§1.2).
//
// Text fields hold valid UTF-8 without control characters (anything else is
// replaced or dropped by the parser). Duration fields are whole seconds, -1
// when the parameter is absent.
type Request struct {
	// Event is the event parameter in its canonical spelling, or the raw
	// value when ParseValues returned ErrUnknownEvent.
	Event Event
	// EventMissing is true when the request has no event parameter at all
	// (§3.1: a follow-up after a response with no input tag).
	EventMissing bool

	// SID is KooKoo's call id. Empty only for the portal probe.
	SID string
	// CID is the caller's number as KooKoo sends it (usually 10 digits or
	// 0-prefixed; §1.2). Personal data: log it with [MaskNumber].
	CID string
	// CalledNumber is the KooKoo number that was called.
	CalledNumber string
	// CIDE164 is the caller's number in E.164. Personal data.
	CIDE164 string
	// CIDType is MOBILE, LANDLINE or FIXED_LINE.
	CIDType string
	// Circle is the caller's telecom circle, e.g. KARNATAKA.
	Circle string
	// Operator is the caller's operator, e.g. Airtel.
	Operator string
	// CIDCountry is the caller's country code, e.g. 91.
	CIDCountry string
	// CIDCountryName is the caller's country name, e.g. India.
	CIDCountryName string
	// RequestTime is KooKoo's timestamp of the request, as sent.
	RequestTime string

	// Data is the event payload (§1.3): the recording URL on Record, the
	// digits on GotDTMF, the dial recording URL (or -1) on Dial, the text
	// on Recognize.
	Data string
	// Status is the outcome: answered / not_answered on Dial, the record
	// status on Record.
	Status string
	// Process is the tag that was running on Hangup and Disconnect.
	Process string
	// Message is KooKoo's message, seen on Disconnect and Dial.
	Message string
	// OutboundSID is present on requests of API-originated calls.
	OutboundSID string

	// CallDuration is the answered duration of a dial (Dial event).
	CallDuration int
	// TotalCallDuration is the call's duration (Hangup, Disconnect).
	TotalCallDuration int
	// RecordDuration is the duration of a recording.
	RecordDuration int

	// Extra holds the parameters koel does not know, such as the
	// application's own query parameters (?state=...). Nil when there are
	// none.
	Extra url.Values
}

// IsProbe reports whether r is the KooKoo portal's "Test Application URL"
// probe: NewCall without a sid (§1.1). Answer it with valid XML and no side
// effects.
func (r Request) IsProbe() bool { return r.Event == EventNewCall && r.SID == "" }

// Digits returns the keys the caller pressed, for GotDTMF (and a request
// without event, which KooKoo sends where GotDTMF with no input is meant,
// §3.1), with a trailing '#' terminator stripped (§3.2). Empty means no
// input before the timeout. Other events return "".
func (r Request) Digits() string {
	if r.Event != EventGotDTMF && r.Event != EventNone {
		return ""
	}
	d := strings.ReplaceAll(r.Data, "%23", "#")
	return strings.TrimSuffix(d, "#")
}

// HasRecording reports whether Data holds a recording URL (Record, Dial,
// or Hangup during a record or a dial, §3.3).
func (r Request) HasRecording() bool {
	switch r.Event {
	case EventRecord, EventDial, EventHangup:
		return isHTTPURL(r.Data)
	}
	return false
}

// Values encodes r as KooKoo would send it, the inverse of [ParseValues].
// Empty strings and negative durations are left out, except data on
// GotDTMF, which KooKoo sends empty on a timeout. Extra parameters are
// copied first, so a known field wins over an Extra entry of the same name.
func (r Request) Values() url.Values {
	v := make(url.Values, len(r.Extra)+8)
	for k, vs := range r.Extra {
		v[k] = append([]string(nil), vs...)
	}
	if !r.EventMissing {
		v.Set(paramEvent, string(r.Event))
	} else {
		v.Del(paramEvent)
	}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		} else {
			v.Del(k)
		}
	}
	set(paramSID, r.SID)
	set(paramCID, r.CID)
	set(paramCalledNumber, r.CalledNumber)
	set(paramCIDE164, r.CIDE164)
	set(paramCIDType, r.CIDType)
	set(paramCircle, r.Circle)
	set(paramOperator, r.Operator)
	set(paramCIDCountry, r.CIDCountry)
	set(paramCIDCountryName, r.CIDCountryName)
	set(paramRequestTime, r.RequestTime)
	set(paramData, r.Data)
	if r.Event == EventGotDTMF {
		v.Set(paramData, r.Data)
	}
	set(paramStatus, r.Status)
	set(paramProcess, r.Process)
	set(paramMessage, r.Message)
	set(paramOutboundSID, r.OutboundSID)
	setInt := func(k string, n int) {
		if n >= 0 {
			v.Set(k, strconv.Itoa(n))
		} else {
			v.Del(k)
		}
	}
	setInt(paramCallDuration, r.CallDuration)
	setInt(paramTotalCallDuration, r.TotalCallDuration)
	setInt(paramRecordDuration, r.RecordDuration)
	return v
}

// ParseRequest reads a KooKoo request. GET (and HEAD) take the parameters
// from the query string; POST merges an application/x-www-form-urlencoded or
// multipart/form-data body with the query, the body winning for a name in
// both (§1.1). Other body types are ignored. The query and the body are each
// capped at [MaxRequestBytes]; see [ParseValues] for everything else,
// including what the Request holds when an error is returned.
func ParseRequest(r *http.Request) (Request, error) {
	v, err := requestValues(r)
	if err != nil {
		return emptyRequest(), err
	}
	return ParseValues(v)
}

// requestValues merges the query and a POST form body, the body winning.
func requestValues(r *http.Request) (url.Values, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return nil, fmt.Errorf("%w: %s", ErrMethodNotAllowed, truncateForError(r.Method))
	}
	if len(r.URL.RawQuery) > MaxRequestBytes {
		return nil, fmt.Errorf("%w: query string over %d bytes", ErrTooLarge, MaxRequestBytes)
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: query string: %w", ErrInvalidParam, err)
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return query, nil
	}
	xmlTextAndClose, err := readForm(r)
	if err != nil || len(xmlTextAndClose) == 0 {
		return query, err
	}
	for k, vs := range xmlTextAndClose {
		query[k] = vs
	}
	return query, nil
}

// emptyRequest is a Request with no parameters: every duration absent.
func emptyRequest() Request {
	return Request{CallDuration: -1, TotalCallDuration: -1, RecordDuration: -1}
}

// readForm reads a POST body form, capped at MaxRequestBytes.
func readForm(r *http.Request) (url.Values, error) {
	ct := r.Header.Get("Content-Type")
	mediaType := "application/x-www-form-urlencoded"
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, fmt.Errorf("%w: content type: %w", ErrInvalidParam, err)
		}
		mediaType = mt
	}
	switch mediaType {
	case "application/x-www-form-urlencoded":
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
		if err != nil {
			return nil, fmt.Errorf("kookoo: read request body: %w", err)
		}
		if len(b) > MaxRequestBytes {
			return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, MaxRequestBytes)
		}
		v, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w: body: %w", ErrInvalidParam, err)
		}
		return v, nil
	case "multipart/form-data":
		r.Body = http.MaxBytesReader(nil, r.Body, MaxRequestBytes)
		if err := r.ParseMultipartForm(MaxRequestBytes); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, MaxRequestBytes)
			}
			return nil, fmt.Errorf("%w: multipart body: %w", ErrInvalidParam, err)
		}
		defer func() { _ = r.MultipartForm.RemoveAll() }()
		return url.Values(r.MultipartForm.Value), nil
	default:
		return nil, nil
	}
}

// ParseValues reads KooKoo request parameters (§1.2). The first value of a
// repeated parameter is used. Event names are matched case-insensitively
// and stored in their canonical spelling.
//
// Errors: [ErrTooLarge] when a value or the parameter set exceeds its cap;
// [ErrInvalidParam] for a malformed sid, duration or data (data must be an
// http(s) URL on Record, a URL or -1 on Dial, and keypad keys on GotDTMF);
// [ErrUnknownEvent]; [ErrMissingSID] for a request other than the probe
// without sid. On error the returned Request holds only Event, EventMissing
// and SID, and only those of them that are themselves valid, so the caller
// can answer safely without acting on half-read input.
func ParseValues(v url.Values) (Request, error) {
	if err := checkSizes(v); err != nil {
		return emptyRequest(), err
	}
	head := emptyRequest()
	raw, present := firstValue(v, paramEvent)
	head.EventMissing = !present
	var eventErr error
	if present && raw != "" {
		if ev, ok := knownEvents[strings.ToLower(raw)]; ok {
			head.Event = ev
		} else {
			head.Event = Event(cleanText(raw))
			eventErr = fmt.Errorf("%w: %q", ErrUnknownEvent, head.Event)
		}
	}
	if sid, _ := firstValue(v, paramSID); sid != "" {
		if err := checkSID(sid); err != nil {
			return head, err
		}
		head.SID = sid
	}
	if eventErr != nil {
		return head, eventErr
	}
	if head.SID == "" && head.Event != EventNewCall {
		return head, ErrMissingSID
	}

	req := head
	req.CID = cleanParam(v, paramCID)
	req.CalledNumber = cleanParam(v, paramCalledNumber)
	req.CIDE164 = cleanParam(v, paramCIDE164)
	req.CIDType = cleanParam(v, paramCIDType)
	req.Circle = cleanParam(v, paramCircle)
	req.Operator = cleanParam(v, paramOperator)
	req.CIDCountry = cleanParam(v, paramCIDCountry)
	req.CIDCountryName = cleanParam(v, paramCIDCountryName)
	req.RequestTime = cleanParam(v, paramRequestTime)
	req.Status = cleanParam(v, paramStatus)
	req.Process = cleanParam(v, paramProcess)
	req.Message = cleanParam(v, paramMessage)
	req.OutboundSID = cleanParam(v, paramOutboundSID)

	data, _ := firstValue(v, paramData)
	if err := checkData(req.Event, data); err != nil {
		return head, err
	}
	req.Data = data

	var err error
	if req.CallDuration, err = intParam(v, paramCallDuration); err != nil {
		return head, err
	}
	if req.TotalCallDuration, err = intParam(v, paramTotalCallDuration); err != nil {
		return head, err
	}
	if req.RecordDuration, err = intParam(v, paramRecordDuration); err != nil {
		return head, err
	}

	for k, vs := range v {
		if knownParams[k] {
			continue
		}
		if req.Extra == nil {
			req.Extra = make(url.Values)
		}
		req.Extra[k] = append([]string(nil), vs...)
	}
	return req, nil
}

// checkSizes enforces the caps on names, values and their numbers.
func checkSizes(v url.Values) error {
	if len(v) > MaxParams {
		return fmt.Errorf("%w: %d parameters, at most %d", ErrTooLarge, len(v), MaxParams)
	}
	n := 0
	for k, vs := range v {
		if len(k) > MaxShortValueBytes {
			return fmt.Errorf("%w: parameter name over %d bytes", ErrTooLarge, MaxShortValueBytes)
		}
		limit := MaxValueBytes
		if knownParams[k] && !longParams[k] {
			limit = MaxShortValueBytes
		}
		n += len(vs)
		if n > maxValues {
			return fmt.Errorf("%w: more than %d values", ErrTooLarge, maxValues)
		}
		for _, s := range vs {
			if len(s) > limit {
				return fmt.Errorf("%w: parameter %q over %d bytes", ErrTooLarge, cleanText(k), limit)
			}
		}
	}
	return nil
}

// firstValue returns the first value of k and whether k is present at all.
func firstValue(v url.Values, k string) (string, bool) {
	vs, ok := v[k]
	if !ok {
		return "", false
	}
	if len(vs) == 0 {
		return "", true
	}
	return vs[0], true
}

// cleanParam returns the first value of k, made printable.
func cleanParam(v url.Values, k string) string {
	s, _ := firstValue(v, k)
	return cleanText(s)
}

// cleanText makes s valid UTF-8 without control characters. It is idempotent.
func cleanText(s string) string {
	if utf8.ValidString(s) && !hasControl(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func hasControl(s string) bool {
	for _, r := range s {
		if isControl(r) {
			return true
		}
	}
	return false
}

// checkSID accepts KooKoo's numeric sids and emulators' UUID-like ones.
func checkSID(sid string) error {
	if !validSID(sid) {
		return fmt.Errorf("%w: sid must be 1-%d characters of [A-Za-z0-9._:-]", ErrInvalidParam, maxSIDBytes)
	}
	return nil
}

func validSID(sid string) bool {
	if sid == "" || len(sid) > maxSIDBytes {
		return false
	}
	for i := 0; i < len(sid); i++ {
		c := sid[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// checkData validates the event payload where its shape is known (§1.3).
func checkData(ev Event, data string) error {
	if !utf8.ValidString(data) || hasControl(data) {
		return fmt.Errorf("%w: data holds control characters or invalid UTF-8", ErrInvalidParam)
	}
	if data == "" {
		return nil
	}
	switch ev {
	case EventRecord:
		if !isHTTPURL(data) {
			return fmt.Errorf("%w: Record data is not an http(s) URL", ErrInvalidParam)
		}
	case EventDial:
		if data != "-1" && !strings.EqualFold(data, "null") && !isHTTPURL(data) {
			return fmt.Errorf("%w: Dial data is neither a URL nor -1", ErrInvalidParam)
		}
	case EventGotDTMF:
		d := strings.ReplaceAll(data, "%23", "#")
		for i := 0; i < len(d); i++ {
			c := d[i]
			if (c < '0' || c > '9') && c != '*' && c != '#' {
				return fmt.Errorf("%w: GotDTMF data is not keypad keys", ErrInvalidParam)
			}
		}
	}
	return nil
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")
}

// intParam reads a duration in whole seconds: -1 when absent, empty or
// negative (KooKoo sends -1 for "not applicable").
func intParam(v url.Values, k string) (int, error) {
	s, _ := firstValue(v, k)
	s = strings.TrimSpace(s)
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1, fmt.Errorf("%w: %s is not an integer", ErrInvalidParam, k)
	}
	if n < 0 {
		return -1, nil
	}
	if n > maxDurationSeconds {
		return -1, fmt.Errorf("%w: %s over %d", ErrInvalidParam, k, maxDurationSeconds)
	}
	return n, nil
}

// MaskNumber hides a phone number for logs: every digit but the last four
// becomes '*' and anything that is not a digit is dropped, so
// "+919704665032" gives "********5032". Numbers of four digits or fewer are
// masked entirely; "" stays "".
func MaskNumber(s string) string {
	if s == "" {
		return ""
	}
	digits := make([]byte, 0, 16)
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	if len(digits) > 32 {
		digits = digits[len(digits)-32:]
	}
	if len(digits) <= 4 {
		return "****"
	}
	for i := 0; i < len(digits)-4; i++ {
		digits[i] = '*'
	}
	return string(digits)
}
