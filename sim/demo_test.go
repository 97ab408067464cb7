package sim

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/audio/tts"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
	"github.com/koelvoice/koel/kookoo"
)

// demoStack is koel's voice path in one process, wired the way cmd/koel
// wires it: the demo business on a real SQLite store, the FAQ bot, the
// engine, pocketsphinx, kookoo.App at /kookoo/{identifier}, and the Sim on
// the same router with the App's fast path pointing at it.
type demoStack struct {
	*testServer
	store store.Store
}

// startDemo starts the stack; with cached, text-to-speech goes through
// tts.Cache as cmd/koel wires it.
func startDemo(tb testing.TB, cached bool) *demoStack {
	tb.Helper()
	needEspeak(tb)
	var synth tts.Synthesizer = testTTS(tb)
	if cached {
		c, err := tts.NewCache(synth, tts.CacheConfig{})
		if err != nil {
			tb.Fatal(err)
		}
		synth = c
	}
	ctx := context.Background()
	st := storetest.NewSQLite(tb)
	if _, err := demo.Bootstrap(ctx, st, demo.Options{LoadFAQ: func(ctx context.Context, businessID int64, csv []byte) error {
		_, err := faq.Import(ctx, st, businessID, strings.NewReader(string(csv)), faq.ImportOptions{})
		return err
	}}); err != nil {
		tb.Fatalf("demo bootstrap: %v", err)
	}
	faqBot := faq.New(st, faq.Options{})
	engine, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: faqBot})
	if err != nil {
		tb.Fatal(err)
	}
	sphinx, err := stt.NewSphinx(stt.SphinxConfig{DataDir: tb.TempDir(), PoolSize: 8})
	if err != nil {
		tb.Skipf("pocketsphinx unavailable (make test installs it): %v", err)
	}
	vocab := func(ctx context.Context, connection string) (stt.Vocabulary, error) {
		conn, err := st.GetConnection(ctx, ivr.ChannelKooKoo, connection)
		if err != nil {
			return stt.Vocabulary{}, err
		}
		phrases, version, err := faqBot.Phrases(ctx, conn.BusinessID)
		if err != nil {
			return stt.Vocabulary{}, err
		}
		return stt.Vocabulary{Key: fmt.Sprintf("biz%d-v%d", conn.BusinessID, version), Phrases: phrases}, nil
	}
	r := mux.NewRouter()
	srv := httptest.NewServer(r)
	reg := prometheus.NewRegistry()
	s, err := New(Config{
		Logger: testLogger(tb), Registerer: reg, TTS: synth, STT: sphinx, Vocabulary: vocab,
		App: r, PublicBaseURL: srv.URL, Open: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	// The fast path means the App never downloads the softphone's
	// recordings: any dial from the fetcher fails the test.
	fetcher, err := kookoo.NewFetcher(kookoo.FetcherConfig{AllowLoopback: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			tb.Errorf("kookoo.App downloaded a recording from %s: the fast path was not taken", address)
			return nil, fmt.Errorf("no downloads in this test")
		}})
	if err != nil {
		tb.Fatal(err)
	}
	app, err := kookoo.NewApp(kookoo.AppConfig{Store: st, Engine: engine, STT: sphinx, Vocabulary: faqBot,
		Fetcher: fetcher, PreTranscribed: s, Registerer: prometheus.NewRegistry(), Logger: testLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	r.Handle("/kookoo/{identifier}", app).Methods("GET", "HEAD", "POST")
	s.Routes(r)
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		srv.Close()
	})
	return &demoStack{testServer: &testServer{sim: s, srv: srv, reg: reg}, store: st}
}

// botLines returns the "bot: " lines of CLI output.
func botLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if t, ok := strings.CutPrefix(l, "bot: "); ok {
			lines = append(lines, t)
		}
	}
	return lines
}

// containsSpeech reports whether heard holds text spoken by tts exactly
// as a mu-law line delivers it.
func containsSpeech(t *testing.T, heard []int16, text string) bool {
	t.Helper()
	p, err := testTTS(t).Synthesize(context.Background(), text, voiceNamed(""))
	if err != nil {
		t.Fatal(err)
	}
	enc := make([]byte, len(p.Samples))
	audio.EncodeUlaw(enc, p.Samples)
	want := make([]int16, len(enc))
	audio.DecodeUlaw(want, enc)
	// Compare 0.2 s from the first loud sample.
	start := slices.IndexFunc(want, func(s int16) bool { return s > 2000 || s < -2000 })
	if start < 0 || start+1600 > len(want) {
		t.Fatalf("synthesized %q has no speech", text)
	}
	probe := want[start : start+1600]
	for i := 0; i+len(probe) <= len(heard); i++ {
		if heard[i] == probe[0] && slices.Equal(heard[i:i+len(probe)], probe) {
			return true
		}
	}
	return false
}

// TestDemoTwoQuestionsOverLoopback is the acceptance test: the pion CLI
// client asks the demo bot two questions and the right answers come back
// as text and as audio.
func TestDemoTwoQuestionsOverLoopback(t *testing.T) {
	ds := startDemo(t, true)
	out := filepath.Join(t.TempDir(), "bot.wav")
	var stdout, stderr strings.Builder
	err := runCLI(context.Background(), []string{"--server", ds.srv.URL, "--connection", "demo",
		"--say", "what are your opening hours", "--say", "what is your address", "--out", out},
		&stdout, &stderr, cliDeps{tts: testTTS(t)})
	t.Log("\n" + stdout.String() + stderr.String())
	if err != nil {
		t.Fatalf("koel call: %v", err)
	}
	answers := []string{
		"Our stores are open from nine in the morning to nine in the evening, Monday to Saturday, and from ten to six on Sunday.",
		"Our main store is at 42 Residency Road, Bangalore.",
	}
	bot := botLines(stdout.String())
	for _, a := range answers {
		if !slices.Contains(bot, a) {
			t.Errorf("the bot never said %q; it said %q", a, bot)
		}
	}
	if !strings.Contains(stdout.String(), `event: heard "what are your opening hours"`) {
		t.Errorf("the fast-path transcript of the first question is missing")
	}
	// The fast path stores the turn's timings as record mode does: the
	// caller's speech (close to the spoken audio) and the recogniser's time.
	sid := ""
	for _, l := range strings.Split(stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "event: call sid="); ok {
			sid, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	turns, err := ds.store.ListTurns(t.Context(), sid)
	if err != nil || len(turns) < 2 {
		t.Fatalf("turns of call %q: %v (%d)", sid, err, len(turns))
	}
	for i, q := range []string{"what are your opening hours", "what is your address"} {
		played := audiotest.Speak(t, q, "en-us").Duration()
		tr := turns[i]
		speech := time.Duration(tr.SpeechMS) * time.Millisecond
		if speech < played/2 || speech > played+200*time.Millisecond {
			t.Errorf("turn %d: speech_ms %d, want close to the %d ms spoken", tr.Seq, tr.SpeechMS, played.Milliseconds())
		}
		if tr.STTMS <= 0 || tr.STTMS > 30000 {
			t.Errorf("turn %d: stt_ms %d, want a recogniser time", tr.Seq, tr.STTMS)
		}
		t.Logf("turn %d: speech %d ms (spoken %d ms), stt %d ms", tr.Seq, tr.SpeechMS, played.Milliseconds(), tr.STTMS)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	heard, err := audio.DecodeWAV(f, 100<<20)
	if err != nil {
		t.Fatalf("--out: %v", err)
	}
	for _, a := range answers {
		if !containsSpeech(t, heard.Samples, a) {
			t.Errorf("the caller did not hear %q in the bot's audio", a)
		}
	}
}

// TestDemoDTMFZeroTransfers presses 0 while the demo bot listens: the App
// transfers to an agent (<dial>), the simulated dial is not answered and
// the caller is back with the bot.
func TestDemoDTMFZeroTransfers(t *testing.T) {
	ds := startDemo(t, true)
	var stdout, stderr strings.Builder
	err := runCLI(context.Background(), []string{"--server", ds.srv.URL, "--connection", "demo", "--dtmf", "0"},
		&stdout, &stderr, cliDeps{tts: testTTS(t)})
	t.Log("\n" + stdout.String() + stderr.String())
	if err != nil {
		t.Fatalf("koel call: %v", err)
	}
	for _, want := range []string{
		"event: GotDTMF data=0",
		"event: dial *******0000 (simulated not_answered)",
		"event: Dial data=-1 status=not_answered",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// After the unanswered transfer the bot listens again.
	if i, j := strings.Index(stdout.String(), "event: Dial"), strings.LastIndex(stdout.String(), "event: listening (record)"); i < 0 || j < i {
		t.Errorf("the caller is not back with the bot after the transfer")
	}
}
