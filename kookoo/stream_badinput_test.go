package kookoo

import (
	"bytes"
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/audio/audiotest"
	"github.com/koelvoice/koel/ivr"
)

// syncBuffer is a log sink safe for the session goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStreamRefusedBeforeUpgrade: a forged, expired or misdirected token
// and a second socket for a call are refused with an HTTP error and one log
// line, and nothing is stored.
func TestStreamRefusedBeforeUpgrade(t *testing.T) {
	var logs syncBuffer
	sh := newStreamHarness(t, harnessOptions{stt: unavailableSTT{}, logger: slogTo(&logs)}, StreamConfig{})
	sid := sidN(10)
	st := sh.newCall(t, "live", sid)
	base, _, _ := strings.Cut(st.URL, "?")
	past, _ := NewStreamTokens(testStreamKey, time.Minute, func() time.Time { return time.Now().Add(-2 * time.Minute) })
	otherKey, _ := NewStreamTokens(bytes.Repeat([]byte("k"), 32), 0, nil)
	sameKey, _ := NewStreamTokens(testStreamKey, 0, nil)
	cases := []struct {
		name, url string
		status    int
		log       string
	}{
		{"no token", base, http.StatusUnauthorized, "invalid stream token"},
		{"garbage token", base + "?token=abc.def", http.StatusUnauthorized, "invalid stream token"},
		{"other key", base + "?token=" + otherKey.Issue("live", sid, 1), http.StatusUnauthorized, "invalid stream token"},
		{"expired", base + "?token=" + past.Issue("live", sid, 1), http.StatusUnauthorized, "stream token expired"},
		{"other connection", strings.Replace(base, "/live/", "/live-quiet/", 1) + "?token=" + sameKey.Issue("live", sid, 1), http.StatusUnauthorized, "another connection"},
		{"unknown call", base + "?token=" + sameKey.Issue("live", "999", 1), http.StatusNotFound, "no such call"},
		{"stale version", base + "?token=" + sameKey.Issue("live", sid, 7), http.StatusConflict, "already opened"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, status, err := dialStream(tc.url)
			if err == nil || status != tc.status {
				t.Fatalf("dial = %d, %v; want HTTP %d", status, err, tc.status)
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("no log line %q in:\n%s", tc.log, logs.String())
			}
		})
	}
	if strings.Contains(logs.String(), "token=") {
		t.Errorf("a token reached the log:\n%s", logs.String())
	}
	if c := sh.call(sid); c.Version != 1 {
		t.Fatalf("refusals changed the call: %+v", c)
	}
	// The real socket opens; a second one for the same call is refused, on
	// this node (busy) and by the stored version (another node).
	f := dialFake(t, st.URL, sid, true)
	if _, status, err := dialStream(st.URL); err == nil || status != http.StatusConflict {
		t.Fatalf("second socket: %d, %v", status, err)
	}
	f.close()
	waitFor(t, 5*time.Second, "the session to end", func() bool { return sh.stream.ActiveStreams() == 0 })
	if _, status, err := dialStream(st.URL); err == nil || status != http.StatusConflict {
		t.Fatalf("token replayed after the stream: %d, %v", status, err)
	}
	if n := testutil.ToFloat64(sh.stream.m.refused.WithLabelValues("second_socket")); n != 3 {
		t.Errorf("second_socket refusals = %v, want 3", n)
	}
}

// TestStreamBadFrames: each bad input closes the socket with a clear log
// line and status, and the next event=Stream goes on in record mode from
// the stored call; afterwards no session, goroutine or stream is left.
func TestStreamBadFrames(t *testing.T) {
	var logs syncBuffer
	sh := newStreamHarness(t, harnessOptions{stt: unavailableSTT{}, logger: slogTo(&logs)}, StreamConfig{StartTimeout: 300 * time.Millisecond})
	goroutines := runtime.NumGoroutine()
	frame := func(n, rate int) []byte { return AppendMediaMessage(nil, "x", make([]int16, n), rate, "") }
	big := append([]byte(`{"event":"media","data":{"samples":[`), bytes.Repeat([]byte("0,"), 512<<10)...)
	big = append(big, `0],"sampleRate":8000}}`...)
	cases := []struct {
		name   string
		send   func(f *fakeKooKoo)
		status websocket.StatusCode
		log    string
	}{
		{"not json", func(f *fakeKooKoo) { f.write([]byte("hello")) }, websocket.StatusUnsupportedData, "bad message"},
		{"binary", func(f *fakeKooKoo) {
			_ = f.ws.Write(context.Background(), websocket.MessageBinary, []byte{1, 2, 3})
		}, websocket.StatusUnsupportedData, "binary frame"},
		{"1 MB", func(f *fakeKooKoo) { f.write(big) }, websocket.StatusMessageTooBig, "message over 8192 bytes"},
		{"frame of 160 samples", func(f *fakeKooKoo) {
			f.write(frame(CalibrationSamples, CalibrationRate))
			f.write(frame(160, 8000))
		}, websocket.StatusUnsupportedData, "media of 160 samples at 8000 Hz"},
		{"16 kHz after calibration", func(f *fakeKooKoo) {
			f.write(frame(CalibrationSamples, CalibrationRate))
			f.write(frame(CalibrationSamples, CalibrationRate))
		}, websocket.StatusUnsupportedData, "at 16000 Hz"},
		{"faster than real time", func(f *fakeKooKoo) {
			for range 300 {
				f.write(frame(StreamFrameSamples, StreamRate))
			}
		}, websocket.StatusPolicyViolation, "ahead of real time"},
		{"start for another call", nil, websocket.StatusPolicyViolation, "start for another call"},
		{"no start", nil, websocket.StatusPolicyViolation, "no start within 300ms"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sid := sidN(20 + i)
			st := sh.newCall(t, "live", sid)
			f := openFake(t, st.URL, sid)
			f.runReader()
			switch tc.name {
			case "no start":
			case "start for another call":
				start, _ := MarshalStreamMessage(StreamStart{UCID: "12345"})
				f.write(start)
			default:
				start, _ := MarshalStreamMessage(StreamStart{UCID: sid, XHeaders: `{"sid":"` + sid + `"}`})
				f.write(start)
				tc.send(f)
			}
			status, _ := f.waitClosed(t, 10*time.Second)
			if status != tc.status {
				t.Errorf("closed with %v, want %v", status, tc.status)
			}
			waitFor(t, 5*time.Second, "the session to end", func() bool { return sh.stream.ActiveStreams() == 0 })
			if tc.log != "" && !strings.Contains(logs.String(), tc.log) {
				t.Errorf("no log line %q in:\n%s", tc.log, logs.String())
			}
			// KooKoo asks what next: record mode, from the welcome.
			code, body := sh.get("live", "event=Stream&sid="+sid)
			r := xmlOf(t, "Stream", code, body)
			if rec, ok := last(r).(Record); !ok || rec.Name != sid+"-1" || !strings.Contains(spoken(r), "Welcome") {
				t.Fatalf("event=Stream after %s answered %s, want the welcome and the first <record>", tc.name, body)
			}
			if c := sh.call(sid); !c.Live() || c.Turn != 1 {
				t.Errorf("call = %+v", c)
			}
		})
	}
	if n := testutil.ToFloat64(sh.stream.m.fallbacks); n != float64(len(cases)) {
		t.Errorf("fallbacks = %v, want %d", n, len(cases))
	}
	// Nothing is left running: sessions, readers, writers, feeds.
	waitFor(t, 10*time.Second, "goroutines to return", func() bool { return runtime.NumGoroutine() <= goroutines+2 })
}

// TestStreamSilenceForever: a caller who never speaks gets the re-prompt,
// then the goodbye; the stream is left and event=Stream hangs up. Each
// no-input is a stored turn.
func TestStreamSilenceForever(t *testing.T) {
	sh := newStreamHarness(t, harnessOptions{stt: unavailableSTT{}}, StreamConfig{})
	sid := sidN(40)
	st := sh.newCall(t, "live-quiet", sid)
	f := dialFake(t, st.URL, sid, true)
	f.say(audiotest.Noise(20*time.Second, -65, 7).Samples) // line noise, never speech
	status, reason := f.waitClosed(t, 40*time.Second)
	if status != websocket.StatusNormalClosure || !strings.Contains(reason, "goodbye") {
		t.Fatalf("closed with %v %q, want a normal close to say goodbye", status, reason)
	}
	code, body := sh.get("live-quiet", "event=Stream&sid="+sid)
	r := xmlOf(t, "Stream", code, body)
	if _, ok := last(r).(Hangup); !ok || len(r.Verbs) != 1 {
		t.Fatalf("event=Stream answered %s, want <hangup/>", body)
	}
	if code, body := sh.get("live-quiet", "event=Disconnect&sid="+sid); code != http.StatusOK || body != "" {
		t.Fatalf("Disconnect: %d %q", code, body)
	}
	if c := sh.call(sid); c.State != ivr.CallStateEnded || c.Outcome != ivr.OutcomeNoInput {
		t.Errorf("call = %+v", c)
	}
	turns := sh.turns(sid)
	if len(turns) != 2 {
		t.Fatalf("turns = %+v, want 2 no-inputs", turns)
	}
	for _, tr := range turns {
		if tr.RecordStatus != "no_input" || tr.Transcript != "" {
			t.Errorf("turn = %+v", tr)
		}
	}
}
