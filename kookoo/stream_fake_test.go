package kookoo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/koelvoice/koel/audio/tts"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
)

// streamSettings are the voice settings of the "live" connection: the demo
// connection in stream mode, with a short silence period so the tests run
// quickly.
var streamSettings = func() ivr.ConnectionSettings {
	s := demoSettings
	s.VoiceMode = VoiceModeStream
	s.SIPNumber = "524431"
	s.RecordCalls = true
	s.SilencePeriod = 1
	s.MaxRecordTime = 8
	return s
}()

// streamHarness is the app harness with the stream server mounted on a
// loopback HTTP server, as cmd/koel mounts it.
type streamHarness struct {
	*harness
	srv    *httptest.Server
	stream *StreamServer
}

func newEspeak(t testing.TB) tts.Synthesizer {
	t.Helper()
	e, err := tts.NewEspeak(tts.EspeakConfig{})
	if errors.Is(err, tts.ErrUnavailable) {
		t.Skipf("espeak-ng unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var testStreamKey = []byte("0123456789abcdef0123456789abcdef")

func newStreamHarness(t testing.TB, o harnessOptions, cfg StreamConfig) *streamHarness {
	t.Helper()
	h := newHarness(t, o)
	if !o.noSetup {
		quiet := streamSettings
		quiet.AgentNumber, quiet.MaxRecordTime, quiet.MaxFailures = "", 1, 2
		for id, st := range map[string]ivr.ConnectionSettings{"live": streamSettings, "live-quiet": quiet} {
			if err := h.store.CreateConnection(context.Background(), &ivr.Connection{BusinessID: h.biz.ID, Channel: ivr.ChannelKooKoo,
				Identifier: id, Active: true, Settings: st}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sh := &streamHarness{harness: h}
	sh.srv = httptest.NewServer(h.router)
	t.Cleanup(sh.srv.Close)
	cfg.App = h.app
	if cfg.STT == nil {
		cfg.STT = o.stt
	}
	if cfg.TTS == nil {
		cfg.TTS = newEspeak(t)
	}
	if cfg.Tokens == nil {
		tok, err := NewStreamTokens(testStreamKey, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Tokens = tok
	}
	cfg.Vocabulary = faq.New(h.store, faq.Options{})
	cfg.PublicURL = sh.srv.URL
	if cfg.Logger == nil {
		cfg.Logger = o.logger
	}
	cfg.Registerer = h.reg
	s, err := NewStreamServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sh.stream = s
	t.Cleanup(s.Close)
	h.router.Handle("/kookoo/{identifier}/stream", s).Methods(http.MethodGet)
	return sh
}

// newCall answers a NewCall on the live connection and returns the
// <stream> verb.
func (sh *streamHarness) newCall(t *testing.T, identifier, sid string) Stream {
	t.Helper()
	code, body := sh.get(identifier, "event=NewCall&sid="+sid+"&cid=09704665032&called_number=918065740671")
	r := xmlOf(t, "NewCall", code, body)
	st, ok := last(r).(Stream)
	if !ok {
		t.Fatalf("NewCall answered %s, not a <stream>", body)
	}
	return st
}

// newCallB is newCall for benchmarks.
func (sh *streamHarness) newCallB(b testing.TB, identifier, sid string) Stream {
	b.Helper()
	code, body := sh.get(identifier, "event=NewCall&sid="+sid+"&cid=09704665032&called_number=918065740671")
	r, err := ParseResponse([]byte(body))
	if err != nil || code != http.StatusOK {
		b.Fatalf("NewCall: %d %s", code, body)
	}
	st, ok := last(r).(Stream)
	if !ok {
		b.Fatalf("NewCall answered %s, not a <stream>", body)
	}
	return st
}

// fakeKooKoo plays KooKoo's side of a stream from the documented frames
// (kookoo-stream.md §2-§4), independently of the emulator: start with
// x_headers, a calibration packet, the caller's audio as 10 ms media
// messages in real time (silence between utterances), the app's packets
// played in real time and acknowledged with mark, clearBuffer honoured, and
// stop. It refuses anything the spec does not allow from an app.
type fakeKooKoo struct {
	t   testing.TB
	ws  *websocket.Conn
	sid string

	mu        sync.Mutex
	mic       []int16   // caller audio not yet sent
	queue     []string  // seqids of app packets waiting to play
	played    int       // app packets played
	lastPlay  time.Time // when the last app packet played
	commands  []string
	badPacket string

	closed chan struct{}
	status websocket.StatusCode
	reason string
	stop   chan struct{}
	wg     sync.WaitGroup
}

// dialFake opens the stream URL as KooKoo does and starts the clock.
func dialFake(t testing.TB, rawURL, sid string, calibrate bool) *fakeKooKoo {
	t.Helper()
	f := openFake(t, rawURL, sid)
	f.start(calibrate)
	return f
}

// openFake opens the socket only.
func openFake(t testing.TB, rawURL, sid string) *fakeKooKoo {
	t.Helper()
	ws, status, err := dialStream(rawURL)
	if err != nil {
		t.Fatalf("dial stream: %v (status %d)", err, status)
	}
	return &fakeKooKoo{t: t, ws: ws, sid: sid, closed: make(chan struct{}), stop: make(chan struct{})}
}

// dialStream opens a stream socket; on refusal it returns the HTTP status.
func dialStream(rawURL string) (*websocket.Conn, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, rawURL, nil)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		return nil, code, err
	}
	ws.SetReadLimit(MaxStreamMessageBytes)
	return ws, http.StatusSwitchingProtocols, nil
}

// start sends start (and the calibration packet) and starts the clock.
func (f *fakeKooKoo) start(calibrate bool) {
	start, _ := MarshalStreamMessage(StreamStart{UCID: f.sid, DID: "918065740671", CallID: "09704665032",
		XHeaders: `{"sid":"` + f.sid + `","cid":"09704665032"}`, Media: StreamFormat{Encoding: "PCMU", SampleRate: 8000, Channels: 1, BitsPerSample: 16}})
	f.write(start)
	if calibrate {
		f.write(AppendMediaMessage(nil, f.sid, make([]int16, CalibrationSamples), CalibrationRate, ""))
	}
	f.run()
}

// run starts the reader and the clock.
func (f *fakeKooKoo) run() {
	f.wg.Add(2)
	go f.read()
	go f.clock()
	f.t.Cleanup(f.close)
}

// runReader starts only the reader (a test then writes frames itself).
func (f *fakeKooKoo) runReader() {
	close(f.stop)
	f.wg.Add(1)
	go f.read()
	f.t.Cleanup(f.close)
}

func (f *fakeKooKoo) write(msg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = f.ws.Write(ctx, websocket.MessageText, msg)
}

func (f *fakeKooKoo) read() {
	defer f.wg.Done()
	defer close(f.closed)
	for {
		_, data, err := f.ws.Read(context.Background())
		if err != nil {
			f.mu.Lock()
			f.status, f.reason = websocket.CloseStatus(err), err.Error()
			f.mu.Unlock()
			return
		}
		m, err := ParseAppMessage(data)
		f.mu.Lock()
		switch m := m.(type) {
		case StreamMedia:
			if len(m.Samples) != StreamFrameSamples || m.SeqID == "" || m.UCID != f.sid {
				f.badPacket = string(data)
			}
			f.queue = append(f.queue, m.SeqID)
		case StreamCommand:
			f.commands = append(f.commands, m.Command)
			if m.Command == CommandClearBuffer {
				f.queue = f.queue[:0]
			}
		default:
			f.badPacket = string(data) + ": " + err.Error()
		}
		f.mu.Unlock()
	}
}

// clock sends one caller frame and plays one app packet every 10 ms.
func (f *fakeKooKoo) clock() {
	defer f.wg.Done()
	t := time.NewTicker(StreamFrameDuration)
	defer t.Stop()
	frame := make([]int16, StreamFrameSamples)
	for {
		select {
		case <-f.stop:
			return
		case <-f.closed:
			return
		case <-t.C:
		}
		f.mu.Lock()
		clear(frame)
		n := copy(frame, f.mic)
		f.mic = f.mic[n:]
		var seq string
		if len(f.queue) > 0 {
			seq = f.queue[0]
			f.queue = f.queue[1:]
			f.played++
			f.lastPlay = time.Now()
		}
		f.mu.Unlock()
		f.write(AppendMediaMessage(nil, f.sid, frame, StreamRate, ""))
		if seq != "" {
			mark, _ := MarshalStreamMessage(StreamMark{UCID: f.sid, SeqID: seq, Timestamp: time.Now().UnixMilli()})
			f.write(mark)
		}
	}
}

// say queues caller speech; the clock sends it in real time.
func (f *fakeKooKoo) say(samples []int16) {
	f.mu.Lock()
	f.mic = append(f.mic, samples...)
	f.mu.Unlock()
}

func (f *fakeKooKoo) snapshot() (played int, queued int, lastPlay time.Time, mic int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.played, len(f.queue), f.lastPlay, len(f.mic)
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitQuiet waits until the caller's audio is sent and the app has played
// something and then been quiet for quiet.
func (f *fakeKooKoo) waitQuiet(t testing.TB, minPlayed int, quiet time.Duration, what string) {
	t.Helper()
	waitFor(t, 30*time.Second, what, func() bool {
		played, queued, last, mic := f.snapshot()
		return mic == 0 && played >= minPlayed && queued == 0 && !last.IsZero() && time.Since(last) >= quiet
	})
}

func (f *fakeKooKoo) hasCommand(c string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.commands {
		if x == c {
			return true
		}
	}
	return false
}

// hangUp sends stop and closes, as KooKoo does when the caller hangs up.
func (f *fakeKooKoo) hangUp() {
	stop, _ := MarshalStreamMessage(StreamStop{UCID: f.sid, DID: "918065740671"})
	f.write(stop)
	f.close()
}

func (f *fakeKooKoo) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	_ = f.ws.Close(websocket.StatusNormalClosure, "")
	f.wg.Wait()
}

// waitClosed waits until the app closed the socket and returns its status.
func (f *fakeKooKoo) waitClosed(t testing.TB, d time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	select {
	case <-f.closed:
	case <-time.After(d):
		t.Fatalf("the app did not close the stream within %v", d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, f.reason
}

func (f *fakeKooKoo) bad() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.badPacket
}

func sidN(n int) string { return "2127580650145" + strconv.Itoa(1000+n) }

func hasPrefixAny(s string, p ...string) bool {
	for _, x := range p {
		if strings.HasPrefix(s, x) {
			return true
		}
	}
	return false
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
