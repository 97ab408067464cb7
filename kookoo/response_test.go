package kookoo

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// renderCases are the responses whose rendering is pinned by
// testdata/responses/<name>.xml: every verb, every attribute and its unit,
// escaping.
var renderCases = []struct {
	name string
	resp Response
}{
	{"empty", Response{}},
	{"sid_and_filler", Response{SID: "1104528084461170", Filler: true, Verbs: []Verb{PlayText{Text: "One moment please"}}}},
	{"playtext", Response{SID: "1", Verbs: []Verb{PlayText{Text: "Hello World"}}}},
	{"playtext_attributes", Response{Verbs: []Verb{PlayText{Text: "Namaste", Lang: "hi-IN", Speed: 3, Quality: "best", Type: "ggl"}}}},
	{"playtext_escaping", Response{SID: "a-1", Verbs: []Verb{PlayText{Text: "Tom & Jerry <say> \"hi\" 'there'\nsecond line\ttab"}}}},
	{"playtext_unicode", Response{Verbs: []Verb{PlayText{Text: "नमस्ते, आप कैसे हैं?", Lang: "hi-IN"}}}},
	{"playtext_invalid_xml_chars", Response{Verbs: []Verb{PlayText{Text: "bell\x07 and \uFFFE"}}}},
	{"say_as", Response{Verbs: []Verb{SayAs{Value: "123ABC", Format: "501", Lang: "EN"}, SayAs{Value: "20121227", Format: "222"}}}},
	{"playaudio", Response{Verbs: []Verb{PlayAudio{URL: "http://www.ozonetel.com/test.wav?a=1&b=<2>"}}}},
	{"collectdtmf", Response{SID: "12345", Verbs: []Verb{CollectDTMF{MaxDigits: 4, TermChar: "#", Timeout: 5 * time.Second,
		Prompts: []Verb{PlayText{Text: "Please enter your pin number"}}}}}},
	{"collectdtmf_timeout_ms", Response{Verbs: []Verb{CollectDTMF{MaxDigits: 1, Timeout: 3500 * time.Millisecond,
		Prompts: []Verb{PlayText{Text: "Press 1"}, SayAs{Value: "1", Format: "1"}, PlayAudio{URL: "https://a.example/menu.wav"}}}}}},
	{"collectdtmf_defaults", Response{Verbs: []Verb{CollectDTMF{}}}},
	{"record", Response{SID: "7", Verbs: []Verb{PlayText{Text: "Welcome. How can I help?"},
		Record{Name: "7-1", Format: "wav", Silence: 3 * time.Second, MaxDuration: 10 * time.Second}}}},
	{"record_all_attributes", Response{Verbs: []Verb{Record{Name: "msg_2", Format: "mp3", Silence: 2 * time.Second,
		MaxDuration: 2 * time.Minute, TermChar: "#", Option: "k"}}}},
	{"dial", Response{Verbs: []Verb{PlayText{Text: "Connecting you to an agent"}, Dial{Number: "09704665032", Record: true,
		LimitTime: 1000 * time.Second, Timeout: 30 * time.Second, MOH: "default", CallerID: "918065740671", PromptToCalledNumber: "no"}}}},
	{"dial_minimal", Response{Verbs: []Verb{Dial{Number: "+919704665032"}}}},
	{"dial_prompt_url", Response{Verbs: []Verb{Dial{Number: "09704665032", MOH: "ring", PromptToCalledNumber: "https://a.example/whisper.wav"}}}},
	{"conference", Response{Verbs: []Verb{Conference{Name: "1234", CallerID: "918065740671", Record: true, Timeout: 90 * time.Second}}}},
	{"hangup", Response{SID: "9", Verbs: []Verb{PlayText{Text: "Goodbye"}, Hangup{}}}},
	{"gotourl_after_collectdtmf", Response{Verbs: []Verb{CollectDTMF{MaxDigits: 1, Prompts: []Verb{PlayText{Text: "Type a number"}}},
		GotoURL{URL: "http://yourserver.com/ivr/goodbye?state=a&x=1"}}}},
	{"gotourl_alone", Response{Verbs: []Verb{GotoURL{URL: "https://other.example/app"}}}},
	{"sendsms", Response{Verbs: []Verb{SendSMS{To: "9999999999", Text: "Your code is 1234 & valid"}, SendSMS{To: "9999999999", Text: "नमस्ते", Unicode: true}, Hangup{}}}},
	{"unknown", Response{Verbs: []Verb{Unknown{Tag: "cctransfer",
		Attrs: map[string]string{"record": "", "moh": "default", "uui": "sales", "timeout": "30"}, Body: "general"}}}},
	{"stream", Response{Verbs: []Verb{StartRecord{}, Stream{URL: "wss://host/kookoo/demo/stream?token=abc.def",
		SIPNumber: "524431", XUUI: `{"sid":"1"}`}}}},
	{"stream_minimal", Response{Verbs: []Verb{Stream{URL: "ws://127.0.0.1:8080/ws", SIPNumber: "524431"}}}},
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.resp.Validate(); err != nil && tc.name != "playtext_invalid_xml_chars" {
				t.Fatalf("Validate: %v", err)
			}
			got := tc.resp.Render()
			checkGolden(t, filepath.Join("testdata/responses", tc.name+".xml"), append(got, '\n'))
		})
	}
}

// TestRenderParseRoundTrip renders every case, parses it back and renders
// again: the value and the bytes must survive.
func TestRenderParseRoundTrip(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			firstValue := tc.resp.Render()
			parsed, err := ParseResponse(firstValue)
			if err != nil {
				t.Fatalf("ParseResponse(%s): %v", firstValue, err)
			}
			if tc.name == "playtext_escaping" || tc.name == "playtext_invalid_xml_chars" {
				// Text keeps its meaning but not its surrounding
				// white space or characters XML cannot hold.
			} else if d := cmp.Diff(tc.resp, parsed, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("parsed response differs (-rendered +parsed):\n%s", d)
			}
			if second := parsed.Render(); string(second) != string(firstValue) {
				t.Errorf("render is not a fixed point:\n first: %s\nsecond: %s", firstValue, second)
			}
		})
	}
}

func TestRenderUnitsAndEscaping(t *testing.T) {
	tests := []struct {
		name string
		verb Verb
		want string
	}{
		{"collectdtmf o in ms", CollectDTMF{Timeout: 4 * time.Second}, `<collectdtmf o="4000"></collectdtmf>`},
		{"record in whole seconds, rounded up", Record{Name: "r", Silence: 2500 * time.Millisecond, MaxDuration: time.Minute}, `<record silence="3" maxduration="60">r</record>`},
		{"dial in seconds", Dial{Number: "1", LimitTime: 5 * time.Minute, Timeout: 30 * time.Second}, `<dial limittime="300" timeout="30">1</dial>`},
		{"conference timeout in ms", Conference{Name: "c", Timeout: 2 * time.Second}, `<conference timeout="2000">c</conference>`},
		{"attribute quotes escaped", PlayText{Text: "x", Lang: `"><hangup/>`}, `<playtext lang="&#34;&gt;&lt;hangup/&gt;">x</playtext>`},
		{"markup in text escaped", GotoURL{URL: "http://a/?x=</gotourl><hangup/>"}, `<gotourl>http://a/?x=&lt;/gotourl&gt;&lt;hangup/&gt;</gotourl>`},
		{"unknown bad names dropped", Unknown{Tag: "ok", Attrs: map[string]string{"Bad Name": "x", "good": "1"}}, `<ok good="1"/>`},
		{"unknown bad tag dropped", Unknown{Tag: "<script>"}, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Response{Verbs: []Verb{tt.verb}}.Render())
			want := "<response>" + tt.want + "</response>"
			if got != want {
				t.Errorf("Render() = %s\nwant       %s", got, want)
			}
		})
	}
}

func TestRenderSkipsNilVerbs(t *testing.T) {
	var nilPtr *PlayText
	got := string(Response{Verbs: []Verb{nil, nilPtr, Hangup{}}}.Render())
	if got != "<response><hangup/></response>" {
		t.Errorf("Render() = %s", got)
	}
}

func TestValidate(t *testing.T) {
	ok := PlayText{Text: "hi"}
	tests := []struct {
		name string
		resp Response
		want string // substring of the error; "" means valid
	}{
		{"welcome then record", Response{SID: "1", Verbs: []Verb{ok, Record{Name: "1-1", Silence: 3 * time.Second}}}, ""},
		{"dtmf then gotourl", Response{Verbs: []Verb{CollectDTMF{Prompts: []Verb{ok}}, GotoURL{URL: "http://a/b"}}}, ""},
		{"play only", Response{Verbs: []Verb{ok, ok, SayAs{Value: "1", Format: "1"}}}, ""},
		{"hangup after dial", Response{Verbs: []Verb{Dial{Number: "1"}, Hangup{}}}, "no <hangup> after <dial>"},
		{"play after record", Response{Verbs: []Verb{Record{Name: "r"}, ok}}, "<playtext> after <record>"},
		{"two inputs", Response{Verbs: []Verb{CollectDTMF{}, Record{Name: "r"}}}, "<record> after <collectdtmf>"},
		{"play after hangup", Response{Verbs: []Verb{Hangup{}, ok}}, "after <hangup>"},
		{"gotourl not last", Response{Verbs: []Verb{GotoURL{URL: "http://a/"}, ok}}, "must be the last verb"},
		{"nil verb", Response{Verbs: []Verb{nil}}, "nil verb"},
		{"pointer verb", Response{Verbs: []Verb{&PlayText{Text: "x"}}}, "not a pointer"},
		{"bad sid", Response{SID: "<x>"}, "sid"},
		{"too many verbs", Response{Verbs: func() []Verb {
			v := make([]Verb, MaxVerbs+1)
			for i := range v {
				v[i] = ok
			}
			return v
		}()}, "at most"},
		{"empty playtext", Response{Verbs: []Verb{PlayText{}}}, "empty text"},
		{"huge playtext", Response{Verbs: []Verb{PlayText{Text: strings.Repeat("a", MaxTextBytes+1)}}}, "text over"},
		{"speed out of range", Response{Verbs: []Verb{PlayText{Text: "x", Speed: 10}}}, "speed"},
		{"lang with markup", Response{Verbs: []Verb{PlayText{Text: "x", Lang: "en<"}}}, "lang"},
		{"say-as non-numeric format", Response{Verbs: []Verb{SayAs{Value: "1", Format: "date"}}}, "format"},
		{"playaudio relative", Response{Verbs: []Verb{PlayAudio{URL: "/a.wav"}}}, "absolute"},
		{"playaudio file scheme", Response{Verbs: []Verb{PlayAudio{URL: "file:///etc/passwd"}}}, "absolute"},
		{"collectdtmf nests record", Response{Verbs: []Verb{CollectDTMF{Prompts: []Verb{Record{Name: "r"}}}}}, "cannot be nested"},
		{"collectdtmf bad prompt", Response{Verbs: []Verb{CollectDTMF{Prompts: []Verb{PlayText{}}}}}, "prompt 0 <playtext>"},
		{"collectdtmf term two keys", Response{Verbs: []Verb{CollectDTMF{TermChar: "##"}}}, "one keypad key"},
		{"collectdtmf sub-ms timeout", Response{Verbs: []Verb{CollectDTMF{Timeout: 1500 * time.Microsecond}}}, "whole number"},
		{"collectdtmf negative timeout", Response{Verbs: []Verb{CollectDTMF{Timeout: -time.Second}}}, "negative"},
		{"collectdtmf too many digits", Response{Verbs: []Verb{CollectDTMF{MaxDigits: 65}}}, "l 65"},
		{"record no name", Response{Verbs: []Verb{Record{}}}, "file name"},
		{"record path traversal", Response{Verbs: []Verb{Record{Name: "../x"}}}, "file name"},
		{"record fractional silence", Response{Verbs: []Verb{Record{Name: "r", Silence: 2500 * time.Millisecond}}}, "whole number"},
		{"record bad format", Response{Verbs: []Verb{Record{Name: "r", Format: "ogg"}}}, "format"},
		{"record huge", Response{Verbs: []Verb{Record{Name: "r", MaxDuration: 2 * time.Hour}}}, "maxduration"},
		{"record bad option", Response{Verbs: []Verb{Record{Name: "r", Option: "x"}}}, "option"},
		{"dial no number", Response{Verbs: []Verb{Dial{}}}, "number"},
		{"dial letters", Response{Verbs: []Verb{Dial{Number: "09xxxxxxxx"}}}, "number"},
		{"dial bad moh", Response{Verbs: []Verb{Dial{Number: "1", MOH: "jazz"}}}, "moh"},
		{"dial bad prompt", Response{Verbs: []Verb{Dial{Number: "1", PromptToCalledNumber: "yes"}}}, "promptToCalledNumber"},
		{"dial bad caller id", Response{Verbs: []Verb{Dial{Number: "1", CallerID: "koel"}}}, "caller_id"},
		{"conference no name", Response{Verbs: []Verb{Conference{}}}, "conference name"},
		{"sendsms no text", Response{Verbs: []Verb{SendSMS{To: "1"}}}, "empty text"},
		{"sendsms bad to", Response{Verbs: []Verb{SendSMS{To: "x", Text: "t"}}}, "to must"},
		{"unknown uppercase tag", Response{Verbs: []Verb{Unknown{Tag: "Stream"}}}, "XML name"},
		{"unknown modelled tag", Response{Verbs: []Verb{Unknown{Tag: "playtext"}}}, "own verb type"},
		{"unknown bad attr", Response{Verbs: []Verb{Unknown{Tag: "x", Attrs: map[string]string{"a b": "1"}}}}, "attribute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.resp.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate passed, want error containing %q", tt.want)
			case tt.want != "" && (!errors.Is(err, ErrInvalidResponse) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want ErrInvalidResponse containing %q", err, tt.want)
			}
		})
	}
}

func TestServeHTTP(t *testing.T) {
	resp := Response{SID: "5", Verbs: []Verb{PlayText{Text: "hi"}, Hangup{}}}
	rec := httptest.NewRecorder()
	resp.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/kookoo/demo", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if got, want := rec.Body.String(), `<response sid="5"><playtext>hi</playtext><hangup/></response>`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}

	rec = httptest.NewRecorder()
	WriteEmpty(rec)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("WriteEmpty: %d %q", rec.Code, rec.Body.String())
	}
}

// TestParseResponseGolden parses every testdata/responses/parse/*.xml, as
// KooKoo apps write them, and pins the canonical rendering (or the error)
// in the .golden next to it. Files named error_* must fail.
func TestParseResponseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/responses/parse/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no response files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".xml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ParseResponse(data)
			var got string
			if err != nil {
				got = "error: " + err.Error() + "\n"
				if !strings.HasPrefix(name, "error_") {
					t.Errorf("unexpected error: %v", err)
				}
				if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, ErrEmptyResponse) {
					t.Errorf("error %v wraps neither ErrMalformedResponse nor ErrEmptyResponse", err)
				}
			} else {
				if strings.HasPrefix(name, "error_") {
					t.Errorf("error_ file parsed without error")
				}
				r1 := resp.Render()
				again, err := ParseResponse(r1)
				if err != nil {
					t.Fatalf("reparse: %v", err)
				}
				if d := cmp.Diff(resp, again, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("reparse differs:\n%s", d)
				}
				got = string(r1) + "\n"
			}
			checkGolden(t, strings.TrimSuffix(file, ".xml")+".golden", []byte(got))
		})
	}
}

func TestParseResponseCaps(t *testing.T) {
	big := "<response><playtext>" + strings.Repeat("a", MaxResponseBytes) + "</playtext></response>"
	if _, err := ParseResponse([]byte(big)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized document: err = %v, want ErrTooLarge", err)
	}
	many := "<response>" + strings.Repeat("<hangup/>", MaxVerbs+1) + "</response>"
	if _, err := ParseResponse([]byte(many)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many verbs: err = %v, want ErrTooLarge", err)
	}
	deep := "<response><x>" + strings.Repeat("<y>", maxDepth) + strings.Repeat("</y>", maxDepth) + "</x></response>"
	if _, err := ParseResponse([]byte(deep)); !errors.Is(err, ErrMalformedResponse) {
		t.Errorf("deep nesting: err = %v, want ErrMalformedResponse", err)
	}
}
