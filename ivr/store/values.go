package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koelvoice/koel/ivr"
)

// Size limits enforced by every [Store] implementation. Input beyond them is
// rejected with [ErrInvalid] before anything is written.
const (
	// MaxKeyBytes caps keys and short labels: channel, identifier,
	// external ids, names, call sid, lock owner, idempotency key, task id,
	// states, sender.
	MaxKeyBytes = 1 << 10
	// MaxURLBytes caps URLs (outbox target, recording URL).
	MaxURLBytes = 8 << 10
	// MaxTextBytes caps free text: message text, FAQ phrases, replies,
	// errors, the last KooKoo response, JSON-encoded settings and lists.
	MaxTextBytes = 1 << 20
	// MaxBodyBytes caps an outbox item's body.
	MaxBodyBytes = 8 << 20
	// MaxBatch caps the messages plus outbox items of one AppendMessages
	// call and the limit of one ClaimOutbox call.
	MaxBatch = 1000
	// MaxFAQNodes caps the nodes of one ReplaceFAQ call.
	MaxFAQNodes = 50000
)

// Time is stored as UTC unix microseconds; the zero time as NULL.

// timeValue returns the stored form of t: nil for the zero time.
func timeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// storedTime is t as it reads back: UTC, microsecond precision.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// timeCol scans a stored time.
type timeCol struct{ p *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = time.Time{}
	case int64:
		*c.p = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// listCol stores a string list as a JSON array; an empty list as NULL, and
// NULL reads back as a nil list.
type listCol struct{ p *[]string }

// Value implements driver.Valuer.
func (c listCol) Value() (driver.Value, error) {
	if len(*c.p) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(*c.p)
	if err != nil {
		return nil, fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

// Scan implements sql.Scanner.
func (c listCol) Scan(src any) error {
	*c.p = nil
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan list: unexpected %T", src)
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("scan list: %w", err)
	}
	if len(list) > 0 {
		*c.p = list
	}
	return nil
}

// settingsCol stores connection settings as a JSON object.
type settingsCol struct{ p *ivr.ConnectionSettings }

// Value implements driver.Valuer.
func (c settingsCol) Value() (driver.Value, error) {
	b, err := ivr.EncodeSettings(*c.p)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// Scan implements sql.Scanner.
func (c settingsCol) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan settings: unexpected %T", src)
	}
	s, err := ivr.DecodeSettings(b)
	if err != nil {
		return fmt.Errorf("scan settings: %w", err)
	}
	*c.p = s
	return nil
}

// bytesCol scans a nullable blob; empty reads back as nil.
type bytesCol struct{ p *[]byte }

// Scan implements sql.Scanner.
func (c bytesCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = nil
	case []byte:
		if len(v) == 0 {
			*c.p = nil
			return nil
		}
		*c.p = append([]byte(nil), v...)
	case string:
		if v == "" {
			*c.p = nil
			return nil
		}
		*c.p = []byte(v)
	default:
		return fmt.Errorf("scan bytes: unexpected %T", src)
	}
	return nil
}

// bytesValue stores b; empty as NULL.
func bytesValue(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// validator collects the first input problem of a method call.
type validator struct{ err error }

func (v *validator) fail(format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
}

// text checks s is storable on every backend: valid UTF-8, no NUL byte
// (PostgreSQL text rejects both) and at most max bytes.
func (v *validator) text(field, s string, max int) {
	switch {
	case len(s) > max:
		v.fail("%s is %d bytes (limit %d)", field, len(s), max)
	case !utf8.ValidString(s):
		v.fail("%s is not valid UTF-8", field)
	case strings.IndexByte(s, 0) >= 0:
		v.fail("%s contains a NUL byte", field)
	}
}

// key checks a non-empty key.
func (v *validator) key(field, s string) {
	if s == "" {
		v.fail("%s is empty", field)
		return
	}
	v.text(field, s, MaxKeyBytes)
}

// list checks every element of a string list and its encoded size.
func (v *validator) list(field string, l []string) {
	total := 0
	for i, s := range l {
		v.text(fmt.Sprintf("%s[%d]", field, i), s, MaxTextBytes)
		total += len(s) + 3
	}
	if total > MaxTextBytes {
		v.fail("%s is about %d bytes (limit %d)", field, total, MaxTextBytes)
	}
}

// id checks a positive row id.
func (v *validator) id(field string, id int64) {
	if id <= 0 {
		v.fail("%s %d is not a valid id", field, id)
	}
}

// settings checks the settings encode within the size limit and read back
// exactly (json.Marshal replaces invalid UTF-8, which would not).
func (v *validator) settings(s ivr.ConnectionSettings) {
	b, err := ivr.EncodeSettings(s)
	if err != nil {
		v.fail("settings: %v", err)
		return
	}
	if len(b) > MaxTextBytes {
		v.fail("settings are %d bytes (limit %d)", len(b), MaxTextBytes)
		return
	}
	back, err := ivr.DecodeSettings(b)
	if err != nil {
		v.fail("settings: %v", err)
		return
	}
	if len(s.Extra) == 0 {
		s.Extra = nil
	}
	if len(s.Webchat.CustomDomains) == 0 {
		s.Webchat.CustomDomains = nil
	}
	if !reflect.DeepEqual(s, back) {
		v.fail("settings hold text that is not valid UTF-8")
	}
}

// clean makes s storable: invalid UTF-8 and NUL bytes replaced, cut to
// max bytes on a rune boundary. Used for diagnostic text (delivery
// errors) that must be recorded rather than rejected.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
