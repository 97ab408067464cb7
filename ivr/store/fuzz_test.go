package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/koelvoice/koel/ivr"
)

// FuzzDatabaseKind: any URL is classified or rejected with ErrInvalid,
// never with the URL's credentials in the message.
func FuzzDatabaseKind(f *testing.F) {
	for _, s := range []string{"", "postgres://u:p@h/db", "postgresql://h/db?sslmode=disable", "POSTGRES://x",
		"mysql://u:p@h/db", "://", "postgres:/x", "sqlite://koel.db", strings.Repeat("a", 100) + "://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		kind, err := databaseKind(u)
		switch {
		case err != nil:
			if !errors.Is(err, ErrInvalid) || kind != "" {
				t.Fatalf("databaseKind(%q) = %q, %v", u, kind, err)
			}
			// The message depends on the scheme only, never on what follows
			// (credentials, host).
			if scheme, _, ok := strings.Cut(u, "://"); ok {
				_, other := databaseKind(scheme + "://elsewhere")
				if other == nil || other.Error() != err.Error() {
					t.Fatalf("error for %q depends on more than the scheme: %v vs %v", u, err, other)
				}
			}
		case u == "":
			if kind != "sqlite" {
				t.Fatalf("empty URL → %q", kind)
			}
		default:
			l := strings.ToLower(u)
			if kind != "postgres" || !(strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")) {
				t.Fatalf("databaseKind(%q) = %q", u, kind)
			}
		}
	})
}

// FuzzListCol: whatever text is in a list column, scanning returns a list
// or an error, and a list that was stored reads back equal.
func FuzzListCol(f *testing.F) {
	for _, s := range []string{`["a","b"]`, `[]`, `null`, `["\u0000"]`, `{"a":1}`, `["a"`, ``, `[1,2]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var got []string
		if err := (listCol{&got}).Scan(raw); err != nil {
			return
		}
		v, err := (listCol{&got}).Value()
		if err != nil {
			t.Fatalf("re-encode %q: %v", got, err)
		}
		var back []string
		if v != nil {
			if err := (listCol{&back}).Scan(v); err != nil {
				t.Fatalf("re-scan: %v", err)
			}
		}
		if !reflect.DeepEqual(got, back) {
			t.Fatalf("round trip %q → %q", got, back)
		}
	})
}

// FuzzValidateText: text the validator accepts is storable on both
// backends (valid UTF-8, no NUL, within the limit); and what it rejects
// is ErrInvalid.
func FuzzValidateText(f *testing.F) {
	for _, s := range []string{"", "hello", "a\x00b", "\xff", "héllo", "\xc3\x28", strings.Repeat("x", MaxKeyBytes+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v validator
		v.text("field", s, MaxKeyBytes)
		ok := utf8.ValidString(s) && !strings.Contains(s, "\x00") && len(s) <= MaxKeyBytes
		if (v.err == nil) != ok {
			t.Fatalf("validator on %q: %v (storable %v)", s, v.err, ok)
		}
		if v.err != nil && !errors.Is(v.err, ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", v.err)
		}
		c := clean(s, 64)
		if !utf8.ValidString(c) || strings.Contains(c, "\x00") || len(c) > 64 {
			t.Fatalf("clean(%q) = %q is not storable", s, c)
		}
	})
}

// FuzzSettingsRoundTrip: settings the validator accepts read back exactly.
func FuzzSettingsRoundTrip(f *testing.F) {
	f.Add("Welcome", "k", "v", 2)
	f.Add("\xff", "", "", 0)
	f.Add("a\x00b", "\xfe", "x", -1)
	f.Fuzz(func(t *testing.T, welcome, key, val string, silence int) {
		in := ivr.ConnectionSettings{WelcomeMessage: welcome, SilencePeriod: silence, Extra: map[string]string{key: val}}
		var v validator
		v.settings(in)
		if v.err != nil {
			if !errors.Is(v.err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", v.err)
			}
			return
		}
		enc, err := (settingsCol{&in}).Value()
		if err != nil {
			t.Fatal(err)
		}
		var out ivr.ConnectionSettings
		if err := (settingsCol{&out}).Scan(enc); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			b, _ := json.Marshal(out)
			t.Fatalf("accepted settings changed in the round trip: %s", b)
		}
	})
}
