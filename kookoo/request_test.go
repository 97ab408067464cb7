package kookoo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// requestGolden is what the golden JSON of a request file records.
type requestGolden struct {
	Request *Request `json:"request,omitempty"`
	IsProbe bool     `json:"is_probe,omitempty"`
	Digits  string   `json:"digits,omitempty"`
	// Error is the error text; Partial is the Request returned with it.
	Error   string   `json:"error,omitempty"`
	Partial *Request `json:"partial,omitempty"`
}

// TestParseRequestGolden parses every testdata/requests/*.http (a raw HTTP
// request) and compares the result with the .json next to it.
func TestParseRequestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/requests/*.http")
	if err != nil || len(files) == 0 {
		t.Fatalf("no request files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".http")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
			if err != nil {
				t.Fatalf("read %s: %v", file, err)
			}
			req, err := ParseRequest(hr)
			var g requestGolden
			if err != nil {
				g.Error = err.Error()
				if req.Event != "" || req.SID != "" || req.EventMissing {
					g.Partial = &req
				}
				if !strings.HasPrefix(name, "error_") {
					t.Errorf("unexpected error: %v", err)
				}
			} else {
				g.Request, g.IsProbe, g.Digits = &req, req.IsProbe(), req.Digits()
				if strings.HasPrefix(name, "error_") {
					t.Errorf("error_ file parsed without error")
				}
				// The inverse must give the same request back.
				again, err := ParseValues(req.Values())
				if err != nil {
					t.Fatalf("ParseValues(Values()): %v", err)
				}
				if d := cmp.Diff(req, again); d != "" {
					t.Errorf("Values round trip (-first +second):\n%s", d)
				}
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(file, ".http")+".json", append(got, '\n'))
		})
	}
}

func TestParseValuesErrors(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		want    error
		partial Request
	}{
		{"unknown event keeps sid", "event=Missed&sid=9", ErrUnknownEvent, partial(Request{Event: "Missed", SID: "9"})},
		{"unknown event without sid", "event=Bogus", ErrUnknownEvent, partial(Request{Event: "Bogus"})},
		{"10 kB data", "event=Record&sid=9&data=" + strings.Repeat("x", 10<<10), ErrTooLarge, emptyRequest()},
		{"data just over the cap", "event=Recognize&sid=9&data=" + strings.Repeat("x", MaxValueBytes+1), ErrTooLarge, emptyRequest()},
		{"short param over its cap", "event=NewCall&sid=9&cid=" + strings.Repeat("9", MaxShortValueBytes+1), ErrTooLarge, emptyRequest()},
		{"record data not a URL", "event=Record&sid=9&data=hello", ErrInvalidParam, partial(Request{Event: EventRecord, SID: "9"})},
		{"record data ftp", "event=Record&sid=9&data=ftp://h/x.wav", ErrInvalidParam, partial(Request{Event: EventRecord, SID: "9"})},
		{"dial data not a URL", "event=Dial&sid=9&data=x", ErrInvalidParam, partial(Request{Event: EventDial, SID: "9"})},
		{"dtmf data letters", "event=GotDTMF&sid=9&data=1a", ErrInvalidParam, partial(Request{Event: EventGotDTMF, SID: "9"})},
		{"data with control char", "event=Recognize&sid=9&data=a%00b", ErrInvalidParam, partial(Request{Event: EventRecognize, SID: "9"})},
		{"sid with markup", "event=Hangup&sid=%3Cx%3E", ErrInvalidParam, partial(Request{Event: EventHangup})},
		{"sid too long", "event=Hangup&sid=" + strings.Repeat("1", maxSIDBytes+1), ErrInvalidParam, partial(Request{Event: EventHangup})},
		{"missing sid on GotDTMF", "event=GotDTMF&data=1", ErrMissingSID, partial(Request{Event: EventGotDTMF})},
		{"missing sid and event", "", ErrMissingSID, partial(Request{EventMissing: true})},
		{"duration not a number", "event=Hangup&sid=9&total_call_duration=1.5", ErrInvalidParam, partial(Request{Event: EventHangup, SID: "9"})},
		{"duration absurd", "event=Hangup&sid=9&total_call_duration=99999999999", ErrInvalidParam, partial(Request{Event: EventHangup, SID: "9"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseValues(v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d := cmp.Diff(tt.partial, got); d != "" {
				t.Errorf("partial request (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseValuesTooManyParams(t *testing.T) {
	v := url.Values{"event": {"NewCall"}, "sid": {"1"}}
	for i := 0; len(v) <= MaxParams; i++ {
		v.Set("p"+strings.Repeat("x", i), "1")
	}
	if _, err := ParseValues(v); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestDigits(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"plain", Request{Event: EventGotDTMF, Data: "123"}, "123"},
		{"terminator", Request{Event: EventGotDTMF, Data: "4#"}, "4"},
		{"only terminator", Request{Event: EventGotDTMF, Data: "#"}, ""},
		{"double-encoded terminator", Request{Event: EventGotDTMF, Data: "4%23"}, "4"},
		{"hash inside kept", Request{Event: EventGotDTMF, Data: "1#2#"}, "1#2"},
		{"timeout", Request{Event: EventGotDTMF}, ""},
		{"missing event", Request{EventMissing: true, Data: "9"}, "9"},
		{"other event", Request{Event: EventRecord, Data: "http://x/1.wav"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.req.Digits(); got != tt.want {
				t.Errorf("Digits() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsProbe(t *testing.T) {
	tests := []struct {
		query string
		want  bool
	}{
		{"event=NewCall", true},
		{"event=newcall", true},
		{"event=NewCall&sid=1", false},
		{"event=Hangup&sid=1", false},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		req, err := ParseValues(v)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if req.IsProbe() != tt.want {
			t.Errorf("%s: IsProbe() = %v, want %v", tt.query, req.IsProbe(), tt.want)
		}
	}
}

func TestEventKnown(t *testing.T) {
	for _, e := range []Event{EventNewCall, EventRecord, EventGotDTMF, EventDial, EventHangup,
		EventDisconnect, EventConference, EventRecognize, EventStream, EventNone} {
		if !e.Known() {
			t.Errorf("%q.Known() = false", e)
		}
	}
	for _, e := range []Event{"Missed", "newcall", "NEWCALL"} {
		if e.Known() {
			t.Errorf("%q.Known() = true", e)
		}
	}
	if !EventHangup.Ended() || !EventDisconnect.Ended() || EventDial.Ended() {
		t.Error("Ended() wrong")
	}
}

// TestValuesOmitsAndKeeps checks the encoding choices of Values.
func TestValuesOmitsAndKeeps(t *testing.T) {
	req := Request{Event: EventGotDTMF, SID: "5", CallDuration: -1, TotalCallDuration: 0,
		RecordDuration: -1, Extra: url.Values{"sid": {"shadowed"}, "state": {"a"}}}
	got := req.Values().Encode()
	want := "data=&event=GotDTMF&sid=5&state=a&total_call_duration=0"
	if got != want {
		t.Errorf("Values() = %s, want %s", got, want)
	}
	missing := Request{EventMissing: true, SID: "5", CallDuration: -1, TotalCallDuration: -1, RecordDuration: -1}
	if got := missing.Values().Encode(); got != "sid=5" {
		t.Errorf("Values() of a request without event = %s", got)
	}
}

func TestParseRequestPostBodyWins(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/kookoo/x?event=NewCall&sid=1&state=q",
		strings.NewReader("event=GotDTMF&data=5"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req, err := ParseRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if req.Event != EventGotDTMF || req.SID != "1" || req.Digits() != "5" || req.Extra.Get("state") != "q" {
		t.Errorf("merged request = %+v", req)
	}
}

func TestMaskNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"+919704665032", "********5032"},
		{"8041169706", "******9706"},
		{"09704665032", "*******5032"},
		{"1234", "****"},
		{"12", "****"},
		{"anonymous", "****"},
		{"+91 97046-65032", "********5032"},
		{"<script>98765</script>", "*8765"},
	}
	for _, tt := range tests {
		if got := MaskNumber(tt.in); got != tt.want {
			t.Errorf("MaskNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// partial sets the absent durations of a partial request.
func partial(r Request) Request {
	r.CallDuration, r.TotalCallDuration, r.RecordDuration = -1, -1, -1
	return r
}
