package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTelephoneEventRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want telephoneEvent
		key  rune
		err  bool
	}{
		{"digit 5 start", []byte{5, 10, 0, 160}, telephoneEvent{Event: 5, Volume: 10, Duration: 160}, '5', false},
		{"hash end", []byte{11, 0x80 | 7, 3, 32}, telephoneEvent{Event: 11, End: true, Volume: 7, Duration: 800}, '#', false},
		{"star", []byte{10, 0, 0, 0}, telephoneEvent{Event: 10}, '*', false},
		{"D", []byte{15, 0x40 | 63, 0xff, 0xff}, telephoneEvent{Event: 15, Volume: 63, Duration: 65535}, 'D', false},
		{"flash is not dtmf", []byte{16, 0, 0, 0}, telephoneEvent{}, 0, true},
		{"short", []byte{1, 2, 3}, telephoneEvent{}, 0, true},
		{"long", []byte{1, 2, 3, 4, 5}, telephoneEvent{}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTelephoneEvent(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got != tc.want || got.key() != tc.key {
				t.Errorf("got %+v key %q, want %+v key %q", got, got.key(), tc.want, tc.key)
			}
			back := got.marshal()
			again, err := parseTelephoneEvent(back)
			if err != nil || again != got {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestDTMFDetectorCountsEachEventOnce(t *testing.T) {
	var d dtmfDetector
	start := telephoneEvent{Event: 1, Duration: 160}.marshal()
	end := telephoneEvent{Event: 1, End: true, Duration: 800}.marshal()
	var keys []rune
	for _, p := range []struct {
		ts uint32
		b  []byte
	}{{100, start}, {100, start}, {100, end}, {100, end}, {100, end}, {900, telephoneEvent{Event: 11}.marshal()}, {900, end}} {
		k, ok, err := d.packet(p.ts, p.b)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			keys = append(keys, k)
		}
	}
	if string(keys) != "1#" {
		t.Errorf("keys = %q, want \"1#\"", string(keys))
	}
}

func TestSayAsText(t *testing.T) {
	cases := []struct{ value, format, want string }{
		{"1234", "1", "one thousand two hundred and thirty four"},
		{"0", "1", "zero"},
		{"100", "1", "one hundred"},
		{"2000005", "1", "two million and five"},
		{"123ABC", "501", "one two three A B C"},
		{"20110721", "201", "Thursday July 21st two thousand and eleven"},
		{"20110721", "202", "July 21st two thousand and eleven"},
		{"20110722", "204", "July 22nd"},
		{"20121227ABC", "222", "December twenty seven two thousand and twelve"},
		{"53.00", "401", "fifty three rupees"},
		{"53", "402", "fifty three rupees and zero zero paise"},
		{"53.5", "402", "fifty three rupees and five zero paise"},
		{"hello", "1", "hello"},
		{"2011", "201", "2011"},
		{"x", "999", "x"},
	}
	for _, tc := range cases {
		if got := sayAsText(tc.value, tc.format); got != tc.want {
			t.Errorf("sayAsText(%q, %q) = %q, want %q", tc.value, tc.format, got, tc.want)
		}
	}
}

func TestCheckOffer(t *testing.T) {
	good, _ := realOffer(t)
	if err := checkOffer(good); err != nil {
		t.Errorf("real offer: %v", err)
	}
	if err := checkOffer(strings.Repeat("a", maxSDPBytes+1)); err == nil {
		t.Error("oversize offer accepted")
	}
	pcmaOnly := strings.ReplaceAll(good, "RTP/SAVPF 0 101", "RTP/SAVPF 8 101")
	pcmaOnly = strings.ReplaceAll(pcmaOnly, "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
	if pcmaOnly == good {
		t.Fatalf("test offer has no PCMU m-line to rewrite:\n%s", good)
	}
	if err := checkOffer(pcmaOnly); err != ErrNoAudio {
		t.Errorf("PCMA-only offer: %v, want ErrNoAudio", err)
	}
}

func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"type":"hangup"}`, true},
		{`{"type":"dtmf","digits":"12#"}`, true},
		{`{"type":"dtmf","digits":"x"}`, false},
		{`{"type":"dtmf"}`, false},
		{`{"type":"reboot"}`, false},
		{`not json`, false},
		{`{"type":"hangup","pad":"` + strings.Repeat("a", maxControlBytes) + `"}`, false},
	} {
		_, err := parseControl([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("parseControl(%.40q) err = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestRecordingsEvictByBytesAndAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := newRecordings(100, time.Minute)
	rs.now = func() time.Time { return now }
	rs.put(&recording{id: "a", wav: make([]byte, 60)})
	rs.put(&recording{id: "b", wav: make([]byte, 30)})
	if _, ok := rs.get("a"); !ok {
		t.Fatal("a evicted too early")
	}
	rs.put(&recording{id: "c", wav: make([]byte, 30)}) // 120 > 100: a goes
	if _, ok := rs.get("a"); ok {
		t.Error("a kept over the byte cap")
	}
	if _, ok := rs.get("b"); !ok {
		t.Error("b evicted although under the cap")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := rs.get("c"); ok {
		t.Error("c kept past its TTL")
	}
	if rs.bytes != 0 || len(rs.order) != 0 {
		t.Errorf("accounting: %d bytes, %d entries left", rs.bytes, len(rs.order))
	}
}

func TestNewRecordingIDIsSafe(t *testing.T) {
	for _, name := range []string{"", "../../etc/passwd", "sid-1", strings.Repeat("x", 500), "名前"} {
		id := newRecordingID(name)
		if len(id) > 70 || strings.ContainsAny(id, "/.\\ ") || id == "" {
			t.Errorf("newRecordingID(%.20q) = %q", name, id)
		}
	}
	if newRecordingID("a") == newRecordingID("a") {
		t.Error("ids repeat")
	}
}

func TestLookupTranscript(t *testing.T) {
	ts := startSim(t, nil)
	ts.sim.recs.put(&recording{id: "r1", hasText: true})
	ts.sim.recs.put(&recording{id: "r2"})
	base := ts.srv.URL + "/sim/recordings/"
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{base + "r1.wav", true},
		{base + "r2.wav", false},
		{base + "r3.wav", false},
		{"http://elsewhere/sim/recordings/r1.wav", false},
		{base + "r1.mp3", false},
	} {
		if _, ok := ts.sim.LookupTranscript(tc.url); ok != tc.ok {
			t.Errorf("LookupTranscript(%q) ok = %v, want %v", tc.url, ok, tc.ok)
		}
	}
}

func TestMetricsFollowTheNamingRules(t *testing.T) {
	ts := startSim(t, nil)
	problems, err := testutil.GatherAndLint(ts.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	// A second Sim on the same registry is a configuration error.
	_, err = New(Config{TTS: testTTS(t), Registerer: ts.reg})
	if err == nil || !strings.Contains(err.Error(), "own Registerer") {
		t.Errorf("second Sim on one registry: %v", err)
	}
	_ = prometheus.NewRegistry()
}

func TestNewValidatesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no tts", Config{}, "TTS is required"},
		{"bad dial outcome", Config{TTS: testTTS(t), DialOutcome: "engaged"}, "DialOutcome"},
		{"negative ring", Config{TTS: testTTS(t), DialRingTime: -time.Second}, "DialRingTime"},
		{"negative cap", Config{TTS: testTTS(t), MaxCalls: -1}, "MaxCalls"},
		{"bad base", Config{TTS: testTTS(t), PublicBaseURL: "ftp://x"}, "PublicBaseURL"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestPageIsServed(t *testing.T) {
	ts := startSim(t, nil)
	for _, p := range []struct{ path, want, ctype string }{
		{"/sim/", "koel softphone", "text/html"},
		{"/sim/static/app.js", "createDataChannel('koel')", "javascript"},
		{"/sim/static/style.css", ".keypad", "text/css"},
	} {
		resp, err := ts.srv.Client().Get(ts.srv.URL + p.path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(b.String(), p.want) || !strings.Contains(resp.Header.Get("Content-Type"), p.ctype) {
			t.Errorf("GET %s: %d %q, body lacks %q", p.path, resp.StatusCode, resp.Header.Get("Content-Type"), p.want)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP", p.path)
		}
	}
	resp, err := ts.srv.Client().Get(ts.srv.URL + "/sim/recordings/nope.wav")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown recording: %d, want 404", resp.StatusCode)
	}
}

func TestSplitSpeech(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"Hello.", []string{"Hello."}},
		{"Hello. How are you? Fine!", []string{"Hello.", "How are you?", "Fine!"}},
		{"No stop at the end", []string{"No stop at the end"}},
		{"It costs 4.50 rupees. Thanks.", []string{"It costs 4.50 rupees.", "Thanks."}},
		{"Our stores are open from nine in the morning to nine in the evening, Monday to Saturday.",
			[]string{"Our stores are open from nine in the morning to nine in the evening,", "Monday to Saturday."}},
		{"Short, with a comma.", []string{"Short, with a comma."}},
	}
	for _, tc := range cases {
		got := splitSpeech(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("splitSpeech(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
