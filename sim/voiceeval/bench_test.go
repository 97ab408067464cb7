package voiceeval

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
)

// maxBenchSpeech is the longest utterance the Record-event target covers.
const maxBenchSpeech = 4 * time.Second

// BenchmarkRecordEvent measures the KooKoo Record event over the whole
// corpus, not one sentence: each iteration plays every utterance of both
// splits (questions, off-topic speech and yes/no/cancel answers) whose
// speech is at most 4 s, once in an espeak-ng voice and once in a flite
// voice (the default voices taken in turn), through the telephone path
// (8 kHz, G.711 µ-law round trip), as a call's Record event to a real
// stack on loopback. It reports the event's p50 and p95 latency, overall
// and per synthesizer, and the recogniser's real-time factor (stt_ms /
// speech_ms as stored on the turns) for pocketsphinx, the only engine that
// runs here without a downloaded model. Target: p95 ≤ 250 ms on 2 cores.
//
// It also reports the process CPU time per event (user + system, the
// whole in-process stack), which a shared machine inflates far less than
// wall time, and that CPU time per second of speech (cpu-rtf). The
// environment variable KOEL_BENCH_SPHINX_ARGS adds pocketsphinx options
// ("-maxwpf 10") for measuring decoder levers.
func BenchmarkRecordEvent(b *testing.B) {
	for _, e := range []string{EngineEspeak, EngineFlite} {
		if err := Available(e); err != nil {
			b.Skipf("%v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(stt.DefaultModelDir, "en-us", "mdef")); err != nil {
		b.Skip("pocketsphinx-en-us model not installed")
	}
	items, err := Corpus()
	if err != nil {
		b.Fatal(err)
	}
	rend, err := NewRenderer(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bySynth := map[string][]Synth{}
	for _, s := range DefaultSynths() {
		bySynth[s.Engine] = append(bySynth[s.Engine], s)
	}
	engines := []string{EngineEspeak, EngineFlite}
	type rec struct {
		engine string
		pcm    audio.PCM
	}
	var recs []rec
	for i, it := range Select(items, SplitAll) {
		for _, e := range engines {
			voices := bySynth[e]
			s := voices[i%len(voices)]
			sp, err := rend.Speech(b.Context(), s, it.Text)
			if err != nil {
				b.Fatal(err)
			}
			if sp.Duration() > maxBenchSpeech {
				continue
			}
			recs = append(recs, rec{e, Telephone(sp, VariantClean, Seed(s, it.Text))})
		}
	}
	sc := stt.SphinxConfig{DecoderArgs: strings.Fields(os.Getenv("KOEL_BENCH_SPHINX_ARGS"))}
	st, err := NewStack(b.Context(), StackConfig{DataDir: b.TempDir(), PoolSize: 2, Sphinx: sc})
	if errors.Is(err, stt.ErrUnavailable) {
		b.Skipf("pocketsphinx unavailable: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Warm up: the vocabulary build and the first decoders.
	if c, _, err := st.NewCall(b.Context()); err == nil {
		_, _, _ = c.Say(b.Context(), recs[0].pcm)
	}
	lat := map[string][]float64{}
	var all []float64
	speech := map[string]time.Duration{}
	recog := map[string]time.Duration{}
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		for _, r := range recs {
			c, _, err := st.NewCall(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := processCPU(b)
			_, took, err := c.Say(b.Context(), r.pcm)
			if err != nil {
				b.Fatal(err)
			}
			cpu += processCPU(b) - cpu0
			ms := float64(took.Microseconds()) / 1000
			lat[r.engine] = append(lat[r.engine], ms)
			all = append(all, ms)
			b.StopTimer()
			turns, err := c.Turns(b.Context())
			if err != nil || len(turns) == 0 {
				b.Fatalf("turns: %v (%d)", err, len(turns))
			}
			speech[r.engine] += time.Duration(turns[0].SpeechMS) * time.Millisecond
			recog[r.engine] += time.Duration(turns[0].STTMS) * time.Millisecond
			b.StartTimer()
		}
	}
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(percentile(all, 0.50), "p50-ms")
	b.ReportMetric(percentile(all, 0.95), "p95-ms")
	b.ReportMetric(float64(len(recs)), "utterances")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(all)), "cpu-ms/event")
	var sp, rc time.Duration
	for _, e := range engines {
		b.ReportMetric(percentile(lat[e], 0.50), e+"-p50-ms")
		b.ReportMetric(percentile(lat[e], 0.95), e+"-p95-ms")
		sp += speech[e]
		rc += recog[e]
	}
	if sp > 0 {
		b.ReportMetric(rc.Seconds()/sp.Seconds(), "sphinx-rtf")
		b.ReportMetric(cpu.Seconds()/sp.Seconds(), "cpu-rtf")
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
