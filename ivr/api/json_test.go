package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeJSONRefusesWhatWouldBecomeU+FFFD: raw invalid UTF-8 and
// escaped lone surrogates are refused with 400 instead of being decoded
// to U+FFFD; valid escapes, pairs and escaped backslashes pass.
func TestDecodeJSONRefusesWhatWouldBecomeUFFFD(t *testing.T) {
	cases := []struct {
		body string
		ok   bool
	}{
		{`{"t":"plain"}`, true},
		{`{"t":"caf\u00e9 \u20ac"}`, true},
		{`{"t":"pair \ud83d\ude00"}`, true},
		{`{"t":"pair \uD83D\uDE00 upper"}`, true},
		{`{"t":"escaped backslash \\ud800 is text"}`, true},
		{`{"t":"quote \" then \ud83d\ude00"}`, true},
		{`{"t":"` + "caf\xe9" + `"}`, false},
		{`{"t":"` + "\xed\xa0\x80" + `"}`, false}, // a surrogate encoded as UTF-8
		{`{"t":"lone high \ud800"}`, false},
		{`{"t":"lone high at end \udbff`, false},
		{`{"t":"lone low \udc00"}`, false},
		{`{"t":"high then text \ud800x"}`, false},
		{`{"t":"high then non-low \ud800\u0041"}`, false},
		{`{"t":"two highs \ud800\ud800"}`, false},
		{`{"t":"\\\ud800"}`, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		var v struct {
			T string `json:"t"`
		}
		err := DecodeJSON(httptest.NewRecorder(), r, 0, &v)
		if tc.ok && err != nil {
			t.Errorf("%q: refused: %v", tc.body, err)
		}
		if !tc.ok {
			if e, isAPI := err.(*Error); !isAPI || e.Status != http.StatusBadRequest {
				t.Errorf("%q: err = %v, want 400", tc.body, err)
			} else if strings.Contains(v.T, "\uFFFD") {
				t.Errorf("%q: decoded to U+FFFD", tc.body)
			}
		}
	}
}
