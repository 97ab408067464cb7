package sim

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
	"github.com/koelvoice/koel/kookoo"
)

// streamStack is koel in stream mode, wired as cmd/koel wires it: the demo
// business with a "live" connection in voice_mode stream, the FAQ bot,
// pocketsphinx, kookoo.App and kookoo.StreamServer on a loopback server,
// and the Sim on the same router.
type streamStack struct {
	*testServer
	store  store.Store
	stream *kookoo.StreamServer
}

func startStreamStack(tb testing.TB, mutate func(*Config)) *streamStack {
	tb.Helper()
	needEspeak(tb)
	ctx := context.Background()
	st := storetest.NewSQLite(tb)
	if _, err := demo.Bootstrap(ctx, st, demo.Options{LoadFAQ: func(ctx context.Context, businessID int64, csv []byte) error {
		_, err := faq.Import(ctx, st, businessID, strings.NewReader(string(csv)), faq.ImportOptions{})
		return err
	}}); err != nil {
		tb.Fatalf("demo bootstrap: %v", err)
	}
	base, err := st.GetConnection(ctx, ivr.ChannelKooKoo, "demo")
	if err != nil {
		tb.Fatal(err)
	}
	live := base
	live.ID, live.Identifier = 0, "live"
	live.Settings.VoiceMode, live.Settings.SIPNumber, live.Settings.SilencePeriod = kookoo.VoiceModeStream, "524431", 1
	if live.Settings.AgentNumber == "" {
		live.Settings.AgentNumber = "08040000000"
	}
	if err := st.CreateConnection(ctx, &live); err != nil {
		tb.Fatal(err)
	}
	faqBot := faq.New(st, faq.Options{})
	engine, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: faqBot})
	if err != nil {
		tb.Fatal(err)
	}
	sphinx, err := stt.NewSphinx(stt.SphinxConfig{DataDir: tb.TempDir(), PoolSize: 4})
	if err != nil {
		tb.Skipf("pocketsphinx unavailable (make test installs it): %v", err)
	}
	r := mux.NewRouter()
	srv := httptest.NewServer(r)
	reg := prometheus.NewRegistry()
	cfg := Config{Logger: testLogger(tb), Registerer: reg, TTS: testTTS(tb), App: r, PublicBaseURL: srv.URL, Open: true,
		AppTimeout: 10 * time.Second, DialRingTime: time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	app, err := kookoo.NewApp(kookoo.AppConfig{Store: st, Engine: engine, STT: sphinx, Vocabulary: faqBot,
		Registerer: prometheus.NewRegistry(), Logger: testLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tokens, err := kookoo.NewStreamTokens([]byte("sim-stream-test-key-0123456789abcdef"), 0, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ss, err := kookoo.NewStreamServer(kookoo.StreamConfig{App: app, STT: sphinx, Vocabulary: faqBot, TTS: testTTS(tb),
		Tokens: tokens, PublicURL: srv.URL, Logger: testLogger(tb), Registerer: prometheus.NewRegistry()})
	if err != nil {
		tb.Fatal(err)
	}
	r.Handle("/kookoo/{identifier}", app).Methods("GET", "HEAD", "POST")
	r.Handle("/kookoo/{identifier}/stream", ss).Methods("GET")
	s.Routes(r)
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		ss.Close()
		srv.Close()
	})
	return &streamStack{testServer: &testServer{sim: s, srv: srv, reg: reg}, store: st, stream: ss}
}

// streamCaller drives a softphone call over WebRTC: it speaks synthesized
// questions and listens to the bot's audio as the caller hears it.
type streamCaller struct {
	t      *testing.T
	c      *client
	events []Event
}

func (sc *streamCaller) pump() {
	for {
		select {
		case ev := <-sc.c.events:
			sc.events = append(sc.events, ev)
		default:
			return
		}
	}
}

// saw reports whether an event of type typ (and mode, if set) arrived.
func (sc *streamCaller) saw(typ, mode string) bool {
	sc.pump()
	for _, ev := range sc.events {
		if ev.Type == typ && (mode == "" || ev.Mode == mode) {
			return true
		}
	}
	return false
}

// loudness returns how much of the bot's audio the caller has heard and
// where its last loud frame ends (both in samples).
func (sc *streamCaller) loudness() (total, lastLoud int) {
	heard := sc.c.botAudio().Samples
	for i := len(heard) - audio.FrameSamples; i >= 0; i -= audio.FrameSamples {
		if !quiet(heard[i : i+audio.FrameSamples]) {
			return len(heard), i + audio.FrameSamples
		}
	}
	return len(heard), 0
}

// waitSpoken waits until the bot spoke past sample from and then was quiet
// for quiet; it returns the end of that speech.
func (sc *streamCaller) waitSpoken(from int, quietFor time.Duration, what string) int {
	sc.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	q := audio.DurationToSamples(quietFor, audio.SampleRate)
	for time.Now().Before(deadline) {
		total, last := sc.loudness()
		if last > from && total-last >= q {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	sc.t.Fatalf("timed out waiting for %s", what)
	return 0
}

func (sc *streamCaller) say(text string) {
	sc.t.Helper()
	pcm := audiotest.Concat(audiotest.Speak(sc.t, text, ""), audiotest.Silence(20*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sc.c.send(ctx, &playItem{id: uint64(time.Now().UnixNano()), pcm: pcm.Samples}); err != nil {
		sc.t.Fatalf("say %q: %v", text, err)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStreamModeOverWebRTC is issue 14's acceptance over koel's own
// emulator: a softphone caller on WebRTC calls koel in stream mode; the
// emulator plays KooKoo's part of <stream>. Two demo questions are
// answered, the second barging in on the first answer, the caller asks for
// a person and the stream is left for a <dial> through event=Stream; a
// second call hangs up during the stream. The stored turns are the ones
// the fake KooKoo of the kookoo package gets (TestStreamFakeKooKoo).
func TestStreamModeOverWebRTC(t *testing.T) {
	ss := startStreamStack(t, func(c *Config) { c.DialOutcome, c.DialDuration = DialAnswered, time.Second })
	api, err := newAPI(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := dialSim(ctx, api, clientConfig{Server: ss.srv.URL, Connection: "live"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.hangup()
	sc := &streamCaller{t: t, c: c}
	waitUntil(t, 10*time.Second, "the stream to open", func() bool { return sc.saw(EventStream, "open") })
	welcome := sc.waitSpoken(0, 1500*time.Millisecond, "the welcome")

	sc.say("what are your opening hours")
	total, _ := sc.loudness()
	// Let the first answer play for a second, then speak over it.
	waitUntil(t, 20*time.Second, "the first answer", func() bool { _, last := sc.loudness(); return last > total+8000 })
	sc.say("what is your address")
	waitUntil(t, 10*time.Second, "clearBuffer", func() bool { return sc.saw(EventStream, "clear") })
	total, _ = sc.loudness()
	sc.waitSpoken(total, 1500*time.Millisecond, "the second answer")

	sc.say("i want to talk to an agent")
	waitUntil(t, 30*time.Second, "the dial", func() bool { return sc.saw(EventDial, "") })
	waitUntil(t, 30*time.Second, "the end of the call", func() bool { return sc.saw(EventHangup, "") })
	_ = welcome

	var sid string
	for _, ev := range sc.events {
		if ev.Type == EventCall {
			sid = ev.SID
		}
	}
	call, err := ss.store.GetCall(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if call.State != ivr.CallStateEnded || call.Outcome != ivr.OutcomeTransferred {
		t.Errorf("call = %+v", call)
	}
	checkStreamTurns(t, ss.store, sid, []turnWant{
		{reply: "nine in the morning", status: "silence"},
		{reply: "Residency Road", status: "barge_in:silence:heard_ms="},
		{reply: "connect you", status: "silence"},
	})
	for _, ev := range sc.events {
		if ev.Type == EventStream {
			t.Logf("stream %s: %s", ev.Mode, ev.Text)
		}
	}

	// A second call hangs up while the first answer plays.
	c2, err := dialSim(ctx, api, clientConfig{Server: ss.srv.URL, Connection: "live"})
	if err != nil {
		t.Fatal(err)
	}
	sc2 := &streamCaller{t: t, c: c2}
	waitUntil(t, 10*time.Second, "the stream to open", func() bool { return sc2.saw(EventStream, "open") })
	sc2.waitSpoken(0, 1500*time.Millisecond, "the welcome")
	sc2.say("what are your opening hours")
	total, _ = sc2.loudness()
	waitUntil(t, 20*time.Second, "the answer", func() bool { _, last := sc2.loudness(); return last > total+4000 })
	var sid2 string
	for _, ev := range sc2.events {
		if ev.Type == EventCall {
			sid2 = ev.SID
		}
	}
	if err := c2.hangup(); err != nil {
		t.Logf("hangup: %v", err)
	}
	waitUntil(t, 20*time.Second, "the call to end", func() bool {
		c, err := ss.store.GetCall(ctx, sid2)
		return err == nil && c.State == ivr.CallStateEnded
	})
	if c, _ := ss.store.GetCall(ctx, sid2); c.Outcome != ivr.OutcomeCallerHangup {
		t.Errorf("second call = %+v", c)
	}
	checkStreamTurns(t, ss.store, sid2, []turnWant{{reply: "nine in the morning", status: "silence"}})
	waitUntil(t, 10*time.Second, "streams to close", func() bool { return ss.stream.ActiveStreams() == 0 })
}

type turnWant struct{ reply, status string }

func checkStreamTurns(t *testing.T, st store.Store, sid string, want []turnWant) {
	t.Helper()
	turns, err := st.ListTurns(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != len(want) {
		t.Fatalf("call %s: %d turns, want %d: %+v", sid, len(turns), len(want), turns)
	}
	for i, w := range want {
		tr := turns[i]
		if !strings.Contains(tr.Reply, w.reply) || !strings.HasPrefix(tr.RecordStatus, w.status) || tr.Transcript == "" || tr.MessageID == 0 {
			t.Errorf("turn %d = %+v, want a reply with %q and status %s…", i+1, tr, w.reply, w.status)
		}
		t.Logf("turn %d: %q -> %q (%s)", tr.Seq, tr.Transcript, firstLine(tr.Reply), tr.RecordStatus)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return fmt.Sprint(l)
}

// TestStreamModeCLI: `koel call --connection live --say … --say …` talks to
// a streaming app: the emulator says when the app's audio has played out
// (listen, mode stream), the CLI speaks, and the stream's timeline is
// printed.
func TestStreamModeCLI(t *testing.T) {
	ss := startStreamStack(t, nil)
	var stdout, stderr strings.Builder
	err := runCLI(context.Background(), []string{"--server", ss.srv.URL, "--connection", "live",
		"--say", "what are your opening hours", "--say", "what is your address"}, &stdout, &stderr, cliDeps{tts: testTTS(t)})
	t.Log("\n" + stdout.String() + stderr.String())
	if err != nil {
		t.Fatalf("koel call: %v", err)
	}
	for _, want := range []string{"stream: open ws://", "event: listening (stream)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	_, rest, ok := strings.Cut(stdout.String(), "event: call sid=")
	if !ok {
		t.Fatal("the CLI printed no call sid")
	}
	sid, _, _ := strings.Cut(rest, " ")
	checkStreamTurns(t, ss.store, sid, []turnWant{{reply: "nine in the morning", status: "silence"}, {reply: "Residency Road", status: "silence"}})
}
