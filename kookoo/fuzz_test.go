package kookoo

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseValues checks that ParseValues never panics, fails only with the
// package's errors, and that Values is its inverse: parse, encode, parse
// again gives the same Request.
func FuzzParseValues(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.http")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw))); err == nil {
			f.Add(hr.URL.RawQuery)
		}
	}
	f.Add("event=GotDTMF&sid=1&data=%23")
	f.Add("event=&sid=1&extra=%FF%00")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, err := ParseValues(v)
		if err != nil {
			for _, want := range []error{ErrTooLarge, ErrInvalidParam, ErrUnknownEvent, ErrMissingSID} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("unexpected error kind: %v", err)
		}
		again, err := ParseValues(req.Values())
		if err != nil {
			t.Fatalf("ParseValues(Values()) of %q: %v", query, err)
		}
		if d := cmp.Diff(req, again); d != "" {
			t.Fatalf("round trip of %q differs (-first +second):\n%s", query, d)
		}
		_ = req.Digits()
		_ = MaskNumber(req.CID)
	})
}

// FuzzParseResponse checks that ParseResponse never panics and that, for
// anything it accepts, Render then Parse then Render is a fixed point.
func FuzzParseResponse(f *testing.F) {
	for _, pattern := range []string{"testdata/responses/*.xml", "testdata/responses/parse/*.xml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ParseResponse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, ErrEmptyResponse) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		firstValue := resp.Render()
		parsed, err := ParseResponse(firstValue)
		if err != nil {
			t.Fatalf("rendered response does not parse: %v\n%s", err, firstValue)
		}
		if second := parsed.Render(); !bytes.Equal(firstValue, second) {
			t.Fatalf("render is not a fixed point:\n first: %s\nsecond: %s", firstValue, second)
		}
		_ = resp.Validate()
	})
}
