package kookoo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestStreamVectorsGolden parses the documented messages
// (kookoo-stream.md §2, §3) stored in testdata/stream and compares the
// parsed value with its golden rendering; each message must survive a
// marshal and parse round trip.
func TestStreamVectorsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/stream/*.json")
	if err != nil || len(files) < 9 {
		t.Fatalf("vectors: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parse := ParsePlatformMessage
			if strings.HasPrefix(name, "app_") {
				parse = ParseAppMessage
			}
			m, err := parse(bytes.TrimSpace(data))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			checkGolden(t, strings.TrimSuffix(f, ".json")+".golden", []byte(fmt.Sprintf("%T %+v\n", m, m)))
			out, err := MarshalStreamMessage(m)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			back, err := parse(out)
			if err != nil {
				t.Fatalf("parse marshalled %s: %v", out, err)
			}
			if d := cmp.Diff(m, back); d != "" {
				t.Errorf("round trip differs (-first +second):\n%s", d)
			}
		})
	}
}

func TestStreamVectorFacts(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/stream/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m, err := ParsePlatformMessage(read("platform_start"))
	if err != nil {
		t.Fatal(err)
	}
	start := m.(StreamStart)
	if start.UCID != "21275806501458167" || start.CallID != "919704665032" || start.DID != "918065740671" ||
		start.XHeaders != `{"sid":"21275806501458167","cid":"919704665032"}` || start.Media.Encoding != "PCMU" {
		t.Errorf("start = %+v", start)
	}
	m, _ = ParsePlatformMessage(read("platform_calibration"))
	if !m.(StreamMedia).IsCalibration() {
		t.Error("calibration packet not recognised")
	}
	m, _ = ParsePlatformMessage(read("platform_media"))
	media := m.(StreamMedia)
	if media.IsCalibration() || len(media.Samples) != StreamFrameSamples || media.Samples[7] != -32768 || media.Samples[8] != 32767 {
		t.Errorf("media = %+v", media)
	}
	m, _ = ParsePlatformMessage(read("platform_mark"))
	if mk := m.(StreamMark); mk.Timestamp != 1761560089206 || mk.SeqID != "21707e3f-5b1a-4c1e-9a7e-0d7f3c2b1a00" {
		t.Errorf("mark = %+v", mk)
	}
}

func TestStreamMessageInvalid(t *testing.T) {
	big := `{"event":"media","data":{"samples":[` + strings.Repeat("0,", 200000) + `0],"sampleRate":8000}}`
	many := make([]string, 321)
	for i := range many {
		many[i] = "1"
	}
	cases := []struct {
		name, msg string
		app       bool
		want      error
		substr    string
	}{
		{"not json", "hello", false, ErrStreamMessage, ""},
		{"binary garbage", "\x00\x01\x02", false, ErrStreamMessage, ""},
		{"1 MB", big, false, ErrTooLarge, "at most"},
		{"two values", `{"event":"stop"}{"event":"stop"}`, false, ErrStreamMessage, "more than one"},
		{"no event", `{"type":"text"}`, false, ErrStreamMessage, "no event"},
		{"unknown event", `{"event":"dtmf"}`, false, ErrStreamMessage, "unknown event"},
		{"command from platform", `{"command":"clearBuffer"}`, false, ErrStreamMessage, "sent by apps"},
		{"start without ucid", `{"event":"start"}`, false, ErrStreamMessage, "without ucid"},
		{"bad ucid", `{"event":"start","ucid":"a b"}`, false, ErrStreamMessage, "ucid"},
		{"long did", `{"event":"stop","did":"` + strings.Repeat("9", 200) + `"}`, false, ErrStreamMessage, "did over"},
		{"x_headers number", `{"event":"start","ucid":"1","x_headers":5}`, false, ErrStreamMessage, "x_headers"},
		{"media without data", `{"event":"media"}`, false, ErrStreamMessage, "without data"},
		{"media no samples", `{"event":"media","data":{"samples":[],"sampleRate":8000}}`, false, ErrStreamMessage, "without samples"},
		{"sample out of range", `{"event":"media","data":{"samples":[40000],"sampleRate":8000}}`, false, ErrStreamMessage, ""},
		{"float sample", `{"event":"media","data":{"samples":[1.5],"sampleRate":8000}}`, false, ErrStreamMessage, ""},
		{"string samples", `{"event":"media","data":{"samples":"AAAA","sampleRate":8000}}`, false, ErrStreamMessage, ""},
		{"too many samples", `{"event":"media","data":{"samples":[` + strings.Join(many, ",") + `],"sampleRate":8000}}`, false, ErrStreamMessage, "at most"},
		{"rate 44100", `{"event":"media","data":{"samples":[1],"sampleRate":44100}}`, false, ErrStreamMessage, "sampleRate"},
		{"8 bit", `{"event":"media","data":{"samples":[1],"sampleRate":8000,"bitsPerSample":8}}`, false, ErrStreamMessage, "bitsPerSample"},
		{"stereo", `{"event":"media","data":{"samples":[1],"sampleRate":8000,"channelCount":2}}`, false, ErrStreamMessage, "channelCount"},
		{"frames mismatch", `{"event":"media","data":{"samples":[1,2],"sampleRate":8000,"numberOfFrames":80}}`, false, ErrStreamMessage, "numberOfFrames"},
		{"platform seqid", `{"event":"media","seqid":"x","data":{"samples":[1],"sampleRate":8000}}`, false, ErrStreamMessage, "seqid"},
		{"mark without seqid", `{"event":"mark","ucid":"1"}`, false, ErrStreamMessage, "without seqid"},
		{"mark negative time", `{"event":"mark","seqid":"a","timestamp":-1}`, false, ErrStreamMessage, "timestamp"},
		{"mark string time", `{"event":"mark","seqid":"a","timestamp":"x"}`, false, ErrStreamMessage, ""},
		{"app unknown command", `{"command":"mute"}`, true, ErrStreamMessage, "unknown command"},
		{"app start", `{"event":"start","ucid":"1"}`, true, ErrStreamMessage, "not one an app sends"},
		{"app 16k", `{"event":"media","data":{"samples":[1],"sampleRate":16000}}`, true, ErrStreamMessage, "must be 8000"},
		{"app both", `{"event":"media","command":"clearBuffer"}`, true, ErrStreamMessage, "both"},
		{"app nothing", `{}`, true, ErrStreamMessage, "neither"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parse := ParsePlatformMessage
			if tc.app {
				parse = ParseAppMessage
			}
			m, err := parse([]byte(tc.msg))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("parse = %v, %v; want %v containing %q", m, err, tc.want, tc.substr)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error of %d bytes quotes too much input", len(err.Error()))
			}
		})
	}
}

func TestAppendMediaMessage(t *testing.T) {
	samples := []int16{0, -1, 32767, -32768}
	got := string(AppendMediaMessage(nil, "2127", samples, StreamRate, "a-1"))
	want := `{"event":"media","type":"media","ucid":"2127","seqid":"a-1","data":{"samples":[0,-1,32767,-32768],"bitsPerSample":16,"sampleRate":8000,"channelCount":1,"numberOfFrames":4,"type":"data"}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// An odd ucid is escaped through encoding/json.
	odd := AppendMediaMessage(nil, `a"b`, samples, StreamRate, "")
	if _, err := ParseAppMessage(odd); err == nil || !strings.Contains(err.Error(), "ucid") {
		t.Fatalf("odd ucid: %s: %v", odd, err)
	}
	// A full frame stays far under the cap.
	full := make([]int16, StreamFrameSamples)
	for i := range full {
		full[i] = -32768
	}
	if n := len(AppendMediaMessage(nil, strings.Repeat("9", 128), full, StreamRate, "21707e3f-5b1a-4c1e-9a7e-0d7f3c2b1a00")); n > MaxStreamMessageBytes/4 {
		t.Errorf("full frame message is %d bytes", n)
	}
}

func TestStreamVerbValidate(t *testing.T) {
	cases := []struct {
		name string
		v    Stream
		want string
	}{
		{"ok wss", Stream{URL: "wss://a.example/kookoo/demo/stream?token=x", SIPNumber: "524431"}, ""},
		{"ok ws", Stream{URL: "ws://127.0.0.1:8080/ws", SIPNumber: "524431", XUUI: `{"sid":"1"}`}, ""},
		{"http url", Stream{URL: "https://a.example/ws", SIPNumber: "524431"}, "ws(s)"},
		{"no host", Stream{URL: "wss:///ws", SIPNumber: "524431"}, "ws(s)"},
		{"userinfo", Stream{URL: "wss://u:p@a.example/ws", SIPNumber: "524431"}, "ws(s)"},
		{"no sip", Stream{URL: "wss://a.example/ws"}, "SIP number"},
		{"sip letters", Stream{URL: "wss://a.example/ws", SIPNumber: "sip:1"}, "SIP number"},
		{"long uui", Stream{URL: "wss://a.example/ws", SIPNumber: "1", XUUI: strings.Repeat("x", 5000)}, "x-uui"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Response{Verbs: []Verb{StartRecord{}, tc.v}}.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	// <stream> is an action: nothing but gotourl may follow it.
	err := Response{Verbs: []Verb{Stream{URL: "wss://a.example/ws", SIPNumber: "1"}, PlayText{Text: "x"}}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "must be the last verb") {
		t.Fatalf("verb after stream: %v", err)
	}
	// KooKoo's own spellings parse into the verb.
	resp, err := ParseResponse([]byte(`<Response><Start-Record/><Stream is_sip='TRUE' url='wss://h/ws?a=1&amp;b=2' x-uui='{"sid":"1"}'> 524431 </Stream></Response>`))
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Verbs: []Verb{StartRecord{}, Stream{URL: "wss://h/ws?a=1&b=2", SIPNumber: "524431", XUUI: `{"sid":"1"}`}}}
	if d := cmp.Diff(want, resp); d != "" {
		t.Fatalf("parsed (-want +got):\n%s", d)
	}
	if _, err := ParseResponse([]byte(`<response><stream is_sip="false" url="wss://h/ws">1</stream></response>`)); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("is_sip=false: %v", err)
	}
}

func TestStreamTokens(t *testing.T) {
	now := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	key := bytes.Repeat([]byte{7}, 32)
	tok, err := NewStreamTokens(key, time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewStreamTokens(key[:31], 0, nil); err == nil {
		t.Fatal("short key accepted")
	}
	token := tok.Issue("demo", "2127.5806:x-1", 3)
	c, err := tok.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identifier != "demo" || c.SID != "2127.5806:x-1" || c.Version != 3 || !c.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("claim = %+v", c)
	}
	other, _ := NewStreamTokens(bytes.Repeat([]byte{8}, 32), time.Minute, clock)
	p, sig, _ := strings.Cut(token, ".")
	forged := []string{
		"", "abc", token + "x", p + ".", "." + sig, strings.Repeat("a", 2000),
		other.Issue("demo", "2127.5806:x-1", 3),
		// Another call's payload under this call's signature.
		strings.SplitN(tok.Issue("demo", "other", 3), ".", 2)[0] + "." + sig,
		// A flipped bit in the signature.
		p + "." + flip(sig),
	}
	for i, f := range forged {
		if _, err := tok.Verify(f); !errors.Is(err, ErrStreamToken) {
			t.Errorf("forged %d accepted or wrong error: %v", i, err)
		} else if f != "" && strings.Contains(err.Error(), f) {
			t.Errorf("error quotes the token: %v", err)
		}
	}
	now = now.Add(time.Minute)
	if _, err := tok.Verify(token); !errors.Is(err, ErrStreamTokenExpired) {
		t.Fatalf("expired token: %v", err)
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

// FuzzParseStreamMessage runs both stream parsers on arbitrary input: they
// never panic, every accepted message satisfies the documented limits and
// survives a marshal/parse round trip.
func FuzzParseStreamMessage(f *testing.F) {
	files, _ := filepath.Glob("testdata/stream/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"event":"media","data":{"samples":[1,2,3],"sampleRate":8000,"numberOfFrames":3}}`))
	f.Add([]byte(`{"event":"start","ucid":"1","x_headers":{"a":[1,2]}}`))
	f.Add([]byte(`{"command":"clearBuffer","ucid":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (StreamMessage, error){ParsePlatformMessage, ParseAppMessage} {
			m, err := parse(data)
			if err != nil {
				if !errors.Is(err, ErrStreamMessage) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("unexpected error class: %v", err)
				}
				continue
			}
			if med, ok := m.(StreamMedia); ok && (len(med.Samples) == 0 || len(med.Samples) > maxStreamSamples) {
				t.Fatalf("media with %d samples accepted", len(med.Samples))
			}
			out, err := MarshalStreamMessage(m)
			if err != nil {
				t.Fatalf("marshal %#v: %v", m, err)
			}
			back, err := parse(out)
			if err != nil {
				t.Fatalf("re-parse of %s: %v", out, err)
			}
			if d := cmp.Diff(m, back); d != "" {
				t.Fatalf("round trip differs:\n%s", d)
			}
		}
	})
}
