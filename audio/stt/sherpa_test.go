//go:build cgo && linux && (amd64 || arm64 || arm) && !nosherpa

package stt

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sherpa "github.com/k2-fsa/sherpa-onnx-go-linux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

// The tests below run the real sherpa-onnx library on tiny random-weight
// models (testdata/sherpa_tiny_model.py). Their transcripts are garbage by
// construction: the tests assert behaviour (loading, streaming,
// resampling, hotwords, errors, concurrency, resources), never accuracy.

// sherpaCallerLines are varied caller utterances for the tiny models.
var sherpaCallerLines = []string{
	"when are you open on sunday",
	"do you deliver to chennai",
	"my phone screen is broken what do i do",
	"can i pay with paytm",
}

// noVocab is a vocabulary without phrases: no hotwords.
var noVocab = Vocabulary{Key: "none"}

// newTestSherpa loads the tiny streaming model and, unless offline is "",
// the tiny offline model of that kind ("offline" TDNN-CTC or
// "offline-transducer").
func newTestSherpa(tb testing.TB, cfg SherpaConfig, offline string) *Sherpa {
	tb.Helper()
	specs := []string{"online"}
	if offline != "" {
		specs = append(specs, offline)
	}
	d := tinyModels(tb, specs...)
	cfg.ModelDir = d[0]
	if offline != "" {
		cfg.OfflineModelDir = d[1]
	}
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	s, err := NewSherpa(cfg)
	if err != nil {
		tb.Fatalf("NewSherpa: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// telephoneSpeech is text spoken by espeak-ng through a G.711 round trip.
func telephoneSpeech(tb testing.TB, text string) []int16 {
	tb.Helper()
	return audiotest.ULawRoundTrip(audiotest.Speak(tb, text, "en-us")).Samples
}

// streamFrames writes pcm in 20 ms frames, reading the partial after
// each, and returns the final result and the partials seen.
func streamFrames(tb testing.TB, st Stream, pcm []int16) (Result, []string) {
	tb.Helper()
	var partials []string
	for len(pcm) > 0 {
		n := min(160, len(pcm))
		if err := st.Write(pcm[:n]); err != nil {
			tb.Fatalf("Write: %v", err)
		}
		partials = append(partials, st.Partial())
		pcm = pcm[n:]
	}
	res, err := st.Close(tb.Context())
	if err != nil {
		tb.Fatalf("Close: %v", err)
	}
	return res, partials
}

func checkResult(tb testing.TB, r Result) {
	tb.Helper()
	if r.Words != len(strings.Fields(r.Text)) || r.Text != strings.ToLower(r.Text) || strings.TrimSpace(r.Text) != r.Text {
		tb.Fatalf("result %+v: Words must count Text's words, Text lower case and trimmed", r)
	}
	if (r.Text == "") != (r.Confidence == 0) || r.Confidence < 0 || r.Confidence > 1 {
		tb.Fatalf("result %+v: confidence must be 0 for no text and in (0, 1] otherwise", r)
	}
}

func TestSherpaStreaming(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestSherpa(t, SherpaConfig{Registerer: reg}, "")
	for _, line := range sherpaCallerLines {
		t.Run(line, func(t *testing.T) {
			pcm := telephoneSpeech(t, line)
			st, err := s.Start(t.Context(), noVocab)
			if err != nil {
				t.Fatal(err)
			}
			res, partials := streamFrames(t, st, pcm)
			checkResult(t, res)
			if res.Text == "" {
				t.Fatalf("the tiny model emits tokens for speech; got nothing for %q", line)
			}
			changed := 0
			for i := 1; i < len(partials); i++ {
				if partials[i] != partials[i-1] {
					changed++
				}
			}
			if changed == 0 || partials[len(partials)-1] == "" {
				t.Fatalf("partials never moved while %d frames were decoded: %q", len(partials), partials[len(partials)-1])
			}
			// The same audio in one buffer gives the same transcript: the
			// resampler keeps state across frames exactly, and a stream
			// carries nothing over from the one before.
			whole, err := Transcribe(t.Context(), s, noVocab, pcm)
			if err != nil {
				t.Fatal(err)
			}
			if whole.Text != res.Text {
				t.Fatalf("20 ms frames gave %q, one buffer %q", res.Text, whole.Text)
			}
			if _, err := st.Close(t.Context()); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Close: %v, want ErrClosed", err)
			}
			if err := st.Write(pcm[:160]); !errors.Is(err, ErrClosed) {
				t.Fatalf("Write after Close: %v, want ErrClosed", err)
			}
			if p := st.Partial(); p != "" {
				t.Fatalf("Partial after Close = %q", p)
			}
		})
	}
	if got := testutil.ToFloat64(s.metrics.active); got != 0 {
		t.Fatalf("streams active = %v after all closed", got)
	}
	withText := testutil.ToFloat64(s.metrics.utterances.WithLabelValues(outcomeText)) +
		testutil.ToFloat64(s.metrics.utterances.WithLabelValues(outcomeLowConfidence))
	if withText != float64(2*len(sherpaCallerLines)) {
		t.Fatalf("utterances with text = %v, want %d", withText, 2*len(sherpaCallerLines))
	}
}

// TestSherpaConfidence: confidences come from the model's token scores
// (sherpa-onnx's JSON result), not a constant: in (0, 1), and varying with
// what was said. Streaming and offline alike.
func TestSherpaConfidence(t *testing.T) {
	if !scoresAvailable() {
		t.Fatal("sherpa-onnx's JSON results cannot be read: confidences would all be 1")
	}
	s := newTestSherpa(t, SherpaConfig{}, "offline-transducer")
	for name, tr := range map[string]Transcriber{"streaming": s, "offline transducer": s.Recordings()} {
		t.Run(name, func(t *testing.T) {
			seen := map[float64]bool{}
			for _, line := range sherpaCallerLines {
				res, err := Transcribe(t.Context(), tr, noVocab, telephoneSpeech(t, line))
				if err != nil {
					t.Fatal(err)
				}
				checkResult(t, res)
				t.Logf("%q -> %q confidence %.3f", line, res.Text, res.Confidence)
				if res.Text != "" && (res.Confidence <= 0 || res.Confidence >= 1) {
					t.Fatalf("confidence %v for %q: want the model's score in (0, 1)", res.Confidence, res.Text)
				}
				seen[res.Confidence] = true
			}
			if len(seen) < 2 {
				t.Fatalf("every utterance got the same confidence %v", seen)
			}
		})
	}
	// sherpa-onnx gives no token scores for CTC models: a transcript then
	// has confidence 1, as documented.
	ctc := newTestSherpa(t, SherpaConfig{}, "offline").Recordings()
	for _, line := range sherpaCallerLines {
		res, err := Transcribe(t.Context(), ctc, noVocab, telephoneSpeech(t, line))
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != "" && res.Confidence != 1 {
			t.Fatalf("CTC result %+v: want confidence 1 without token scores", res)
		}
	}
}

func TestSherpaScoresConfidence(t *testing.T) {
	for _, tt := range []struct {
		s    sherpaScores
		want float64
		ok   bool
	}{
		{sherpaScores{}, 0, false},
		{sherpaScores{YsProbs: []float64{0, 0}}, 1, true},
		{sherpaScores{YsProbs: []float64{math.Log(0.5), math.Log(0.5)}}, 0.5, true},
		{sherpaScores{YsLogProbs: []float64{math.Log(0.25), math.Log(1)}}, 0.5, true},
		{sherpaScores{YsProbs: []float64{0.3}}, 1, true}, // positive log probs are clamped
		{sherpaScores{YsProbs: []float64{math.NaN()}}, 0, false},
		{sherpaScores{YsProbs: []float64{math.Inf(-1)}}, 0, false},
	} {
		got, ok := tt.s.confidence()
		if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%+v: confidence %v %v, want %v %v", tt.s, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSherpaStreamErrors(t *testing.T) {
	s := newTestSherpa(t, SherpaConfig{PoolSize: 1}, "offline")
	for name, tr := range map[string]Transcriber{"streaming": s, "offline": s.Recordings()} {
		t.Run(name, func(t *testing.T) {
			st, err := tr.Start(t.Context(), noVocab)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Close(t.Context()); !errors.Is(err, ErrEmptyAudio) {
				t.Fatalf("Close without audio: %v, want ErrEmptyAudio", err)
			}
			st, err = tr.Start(t.Context(), noVocab)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Write(make([]int16, maxUtteranceSamples+1)); !errors.Is(err, ErrTooLong) {
				t.Fatalf("Write of %d s: %v, want ErrTooLong", MaxUtteranceSeconds+1, err)
			}
			if err := st.Write(make([]int16, 1600)); err != nil {
				t.Fatalf("Write after a refused one: %v", err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := st.Close(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Close with a cancelled context: %v", err)
			}
			ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			st, err = tr.Start(ctx, noVocab)
			if err != nil {
				t.Fatalf("the slot was not given back: %v", err)
			}
			if _, err := st.Close(t.Context()); !errors.Is(err, ErrEmptyAudio) {
				t.Fatalf("Close without audio: %v", err)
			}
		})
	}
	// A pool of one: while one stream is open, Start waits and honours ctx.
	st, err := s.Start(t.Context(), noVocab)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Start(ctx, noVocab); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with the pool full: %v, want DeadlineExceeded", err)
	}
	if _, err := s.Start(t.Context(), Vocabulary{Phrases: []string{strings.Repeat("x", 100000)}}); err == nil {
		t.Fatal("a vocabulary over the limits was accepted")
	}
	if _, err := st.Close(t.Context()); !errors.Is(err, ErrEmptyAudio) {
		t.Fatal(err)
	}
}

func TestSherpaOfflineRecordings(t *testing.T) {
	s := newTestSherpa(t, SherpaConfig{}, "offline")
	rec := s.Recordings()
	if rec == Transcriber(s) {
		t.Fatal("with an offline model, recordings must not use the streaming recogniser")
	}
	nonEmpty := 0
	for _, line := range sherpaCallerLines {
		pcm := telephoneSpeech(t, line)
		st, err := rec.Start(t.Context(), Vocabulary{Key: "demo", Phrases: sherpaCallerLines})
		if err != nil {
			t.Fatal(err)
		}
		res, partials := streamFrames(t, st, pcm)
		checkResult(t, res)
		for _, p := range partials {
			if p != "" {
				t.Fatalf("offline partial %q: the offline model decodes at Close", p)
			}
		}
		again, err := Transcribe(t.Context(), rec, noVocab, pcm)
		if err != nil {
			t.Fatal(err)
		}
		if again.Text != res.Text {
			t.Fatalf("the same recording decoded to %q, then %q", res.Text, again.Text)
		}
		if res.Text != "" {
			nonEmpty++
		}
	}
	if nonEmpty == 0 {
		t.Fatal("the tiny offline model returned nothing for every recording: the decode path did not run")
	}

	t.Run("without an offline model", func(t *testing.T) {
		s := newTestSherpa(t, SherpaConfig{}, "")
		if s.Recordings() != Transcriber(s) {
			t.Fatal("without an offline model, recordings go through the streaming model")
		}
	})
}

// TestSherpaResampling checks that koel's 8 kHz audio reaches sherpa-onnx
// at the configured model rate: the backend's transcript equals the one
// sherpa-onnx gives for the same audio resampled in one piece, and it
// differs from feeding the 8 kHz samples unconverted as if they were at
// the model's rate.
func TestSherpaResampling(t *testing.T) {
	for _, rate := range []int{16000, 8000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			s := newTestSherpa(t, SherpaConfig{SampleRate: rate}, "")
			pcm := telephoneSpeech(t, "do you deliver to chennai")
			got, err := Transcribe(t.Context(), s, noVocab, pcm)
			if err != nil {
				t.Fatal(err)
			}
			up, err := audio.Resample(audio.PCM{Rate: audio.SampleRate, Samples: pcm}, rate)
			if err != nil {
				t.Fatal(err)
			}
			direct := decodeDirect(t, s, up.Samples)
			if got.Text != direct {
				t.Fatalf("backend %q, direct at %d Hz %q", got.Text, rate, direct)
			}
			if rate != audio.SampleRate {
				if raw := decodeDirect(t, s, pcm); raw == got.Text {
					t.Fatalf("8 kHz samples fed as %d Hz decode the same (%q): resampling is not observable", rate, raw)
				}
			}
		})
	}
}

// decodeDirect runs sherpa-onnx's own streaming API on samples at the
// model's rate, with the backend's tail padding.
func decodeDirect(tb testing.TB, s *Sherpa, samples []int16) string {
	tb.Helper()
	set, err := s.acquire(tb.Context(), noVocab)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.release(set)
	st := sherpa.NewOnlineStream(set.on)
	defer sherpa.DeleteOnlineStream(st)
	padded := append(append([]int16(nil), samples...), make([]int16, int(tailPaddingSeconds*float64(s.cfg.SampleRate)))...)
	st.AcceptWaveform(s.cfg.SampleRate, toFloat(nil, padded))
	st.InputFinished()
	for set.on.IsReady(st) {
		set.on.Decode(st)
	}
	return sherpaText(set.on.GetResult(st).Text).Text
}

func TestSherpaHotwords(t *testing.T) {
	data := t.TempDir()
	s := newTestSherpa(t, SherpaConfig{DataDir: data, MaxVocabularies: 1, HotwordsScore: 4}, "")
	vocab := Vocabulary{Key: "biz1-v1", Phrases: []string{"Can I pay with Paytm?", "can i pay with paytm", "when are you open on sunday", "2 4 6", ""}}
	if got, want := s.hotwords(vocab), "CAN I PAY WITH PAYTM\nWHEN ARE YOU OPEN ON SUNDAY\n"; got != want {
		t.Fatalf("hotwords = %q, want %q (upper case like the word pieces, deduplicated, digits dropped)", got, want)
	}
	pcm := telephoneSpeech(t, "can i pay with paytm")
	plain, err := Transcribe(t.Context(), s, noVocab, pcm)
	if err != nil {
		t.Fatal(err)
	}
	biased, err := Transcribe(t.Context(), s, vocab, pcm)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, biased)
	// Random weights: the bias is visible as the boosted word pieces
	// taking over the transcript, not as accuracy (measured here: 7 vocabulary
	// words without hotwords, 11 with them at score 4).
	boosted := func(text string) int {
		n := 0
		for _, w := range strings.Fields(text) {
			switch w {
			case "can", "i", "pay", "with", "paytm", "when", "are", "you", "open", "on", "sunday":
				n++
			}
		}
		return n
	}
	t.Logf("plain: %q\nwith hotwords: %q", plain.Text, biased.Text)
	if boosted(biased.Text) < boosted(plain.Text)+3 {
		t.Fatalf("hotwords did not bias decoding: plain %q, with hotwords %q", plain.Text, biased.Text)
	}
	// The hotword list is written for sherpa-onnx to read while it creates
	// the recognisers, then removed: nothing piles up as FAQs change.
	if files, _ := filepath.Glob(filepath.Join(data, "sherpa-hotwords", "*")); len(files) != 0 {
		t.Fatalf("hotword files left behind: %v", files)
	}

	// MaxVocabularies 1: a second vocabulary evicts the first; a stream of
	// an evicted vocabulary keeps its recogniser until it closes.
	other := Vocabulary{Key: "biz2-v1", Phrases: []string{"do you deliver to chennai"}}
	held, err := s.Start(t.Context(), vocab)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Transcribe(t.Context(), s, other, pcm); err != nil {
		t.Fatal(err)
	}
	if err := held.Write(pcm); err != nil {
		t.Fatalf("stream of an evicted vocabulary: %v", err)
	}
	if _, err := held.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	again, err := Transcribe(t.Context(), s, vocab, pcm)
	if err != nil {
		t.Fatal(err)
	}
	if again.Text != biased.Text {
		t.Fatalf("reloaded vocabulary decoded %q, first time %q", again.Text, biased.Text)
	}
	s.mu.Lock()
	n := len(s.sets)
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d recogniser sets loaded, MaxVocabularies is 1", n)
	}

	t.Run("no bpe.vocab", func(t *testing.T) {
		d := tinyModels(t, "online")[0]
		if err := os.Remove(filepath.Join(d, "bpe.vocab")); err != nil {
			t.Fatal(err)
		}
		s, err := NewSherpa(SherpaConfig{ModelDir: d, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if hw := s.hotwords(vocab); hw != "" {
			t.Fatalf("hotwords without bpe.vocab = %q", hw)
		}
		res, err := Transcribe(t.Context(), s, vocab, pcm)
		if err != nil || res.Text != plain.Text {
			t.Fatalf("without bpe.vocab the vocabulary must not change decoding: %q vs %q (%v)", res.Text, plain.Text, err)
		}
	})
}

// TestSherpaConcurrent runs many streams over a small pool, with two
// vocabularies (hotwords on both the streaming and the offline transducer)
// and both recognisers, under -race; the same input always gives the same
// transcript, every stream closes and every resource is given back.
func TestSherpaConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestSherpa(t, SherpaConfig{PoolSize: 2, Registerer: reg}, "offline-transducer")
	clips := make([][]int16, len(sherpaCallerLines))
	for i, l := range sherpaCallerLines {
		clips[i] = telephoneSpeech(t, l)
	}
	vocabs := []Vocabulary{noVocab, {Key: "a", Phrases: sherpaCallerLines[:2]}, {Key: "b", Phrases: sherpaCallerLines[2:]}}
	want := map[string]string{}
	var wmu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				tr := Transcriber(s)
				if (g+i)%2 == 1 {
					tr = s.Recordings()
				}
				v := vocabs[(g+i)%len(vocabs)]
				clip := (g*3 + i) % len(clips)
				res, err := Transcribe(t.Context(), tr, v, clips[clip])
				if err != nil {
					errs <- err
					return
				}
				key := strconv.Itoa((g+i)%2) + "/" + v.Key + "/" + strconv.Itoa(clip)
				wmu.Lock()
				if prev, ok := want[key]; ok && prev != res.Text {
					errs <- errors.New(key + ": " + prev + " then " + res.Text)
				}
				want[key] = res.Text
				wmu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := testutil.ToFloat64(s.metrics.active); got != 0 {
		t.Fatalf("streams active = %v", got)
	}
	if len(s.slots) != 0 {
		t.Fatalf("%d slots still taken", len(s.slots))
	}
	// Close does not wait for a stream still open; the stream finishes
	// and its recognisers are freed when it closes.
	open, err := s.Start(t.Context(), vocabs[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	loaded := s.loaded
	s.mu.Unlock()
	if loaded != 1 {
		t.Fatalf("%d recogniser sets alive after Close with one stream open, want 1", loaded)
	}
	if err := open.Write(clips[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := open.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	loaded = s.loaded
	s.mu.Unlock()
	if loaded != 0 {
		t.Fatalf("%d recogniser sets alive after the last stream closed", loaded)
	}
	if _, err := s.Start(t.Context(), noVocab); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestNewSherpaBadModels: faults of the model directory are clear errors
// wrapping ErrUnavailable, and the process survives them (sherpa-onnx
// itself would exit on most).
func TestNewSherpaBadModels(t *testing.T) {
	d := tinyModels(t, "online", "online,no-metadata", "online,wrong-joiner", "offline,wrong-vocab")
	garbage := t.TempDir()
	for _, f := range []string{"encoder.onnx", "decoder.onnx", "joiner.onnx"} {
		if err := os.WriteFile(filepath.Join(garbage, f), []byte("this is not a model"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(garbage, "tokens.txt"), []byte("<blk> 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		model, offDir string
		want          string
	}{
		{"missing", filepath.Join(t.TempDir(), "missing"), "", "no such file"},
		{"garbage", garbage, "", "not an ONNX model"},
		{"no metadata", d[1], "", "is missing"},
		{"wrong shapes", d[2], "", "do not fit together"},
		{"bad offline model", d[0], d[3], "vocab_size 45"},
		{"offline dir missing", d[0], filepath.Join(t.TempDir(), "gone"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSherpa(SherpaConfig{ModelDir: tt.model, OfflineModelDir: tt.offDir, DataDir: t.TempDir()})
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrUnavailable containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkSherpaRTF reports the real-time factor (decode time / audio
// time) of streaming and offline decoding ON THE TINY RANDOM-WEIGHT TEST
// MODEL. It measures koel's plumbing (resampling, feature extraction,
// onnxruntime calls), not what a real model costs: a streaming zipformer
// is several hundred times larger.
func BenchmarkSherpaRTF(b *testing.B) {
	s := newTestSherpa(b, SherpaConfig{PoolSize: 1}, "offline")
	tr := newTestSherpa(b, SherpaConfig{PoolSize: 1}, "offline-transducer")
	var pcm []int16
	for _, l := range sherpaCallerLines {
		pcm = append(pcm, telephoneSpeech(b, l)...)
	}
	audioSec := float64(len(pcm)) / audio.SampleRate
	for _, bc := range []struct {
		name string
		tr   Transcriber
		v    Vocabulary
	}{
		{"tiny-streaming", s, noVocab},
		{"tiny-streaming-hotwords", s, Vocabulary{Key: "demo", Phrases: sherpaCallerLines}},
		{"tiny-offline-tdnn", s.Recordings(), noVocab},
		{"tiny-offline-transducer", tr.Recordings(), noVocab},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := Transcribe(b.Context(), bc.tr, bc.v, pcm); err != nil { // load and warm
				b.Fatal(err)
			}
			start := time.Now()
			for b.Loop() {
				if _, err := Transcribe(b.Context(), bc.tr, bc.v, pcm); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(time.Since(start).Seconds()/(audioSec*float64(b.N)), "rtf")
		})
	}
}

// sherpaProbeChildEnv makes this test binary act as the probe process.
const sherpaProbeChildEnv = "KOEL_STT_TEST_SHERPA_PROBE"

// TestSherpaProbeProcess is not a test: it is the probe process of
// TestSherpaProbe (the test binary re-run with sherpaProbeChildEnv set).
func TestSherpaProbeProcess(t *testing.T) {
	if os.Getenv(sherpaProbeChildEnv) != "1" {
		return
	}
	if err := RunSherpaProbe(context.Background(), os.Stdin, os.Stdout); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// TestSherpaProbe: a model that passes koel's static checks but makes
// onnxruntime fail while decoding (widths that only clash at run time)
// aborts the probe process, not this one, and NewSherpa reports it.
func TestSherpaProbe(t *testing.T) {
	t.Setenv(sherpaProbeChildEnv, "1")
	probe := []string{os.Args[0], "-test.run=^TestSherpaProbeProcess$"}
	d := tinyModels(t, "online", "offline", "online,runtime-mismatch")
	if _, err := inspectSherpaModel(d[2], true); err != nil {
		t.Fatalf("the runtime-mismatch model must pass the static checks to test the probe: %v", err)
	}

	s, err := NewSherpa(SherpaConfig{ModelDir: d[0], OfflineModelDir: d[1], DataDir: t.TempDir(), Probe: probe})
	if err != nil {
		t.Fatalf("probe of good models: %v", err)
	}
	if _, err := Transcribe(t.Context(), s, noVocab, probeAudio()); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = NewSherpa(SherpaConfig{ModelDir: d[2], DataDir: t.TempDir(), Probe: probe})
	if err == nil {
		t.Fatal("a model onnxruntime cannot run passed the probe")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "probe process") || !strings.Contains(err.Error(), "what():") {
		t.Fatalf("error = %v, want ErrUnavailable from the probe process with onnxruntime's message", err)
	}
	t.Logf("probe error: %v", err)

	_, err = NewSherpa(SherpaConfig{ModelDir: d[0], DataDir: t.TempDir(), Probe: []string{filepath.Join(t.TempDir(), "no-such-binary")}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("missing probe binary: %v", err)
	}
}
