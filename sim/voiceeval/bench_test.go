package voiceeval

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
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
// Events are sent one at a time, so CPU time per event survives a shared,
// loaded machine far better than wall time. It reports two such figures,
// each as mean, p50 and p95 per event: the process's CPU time (user +
// system, the whole in-process stack: HTTP, fetch, store, recogniser, bot;
// cpu-*) and the recogniser's own thread CPU time (upsampling, decoding,
// N-best; stt-cpu-*, from [stt.Sphinx.CPU]), with both per second of
// speech (cpu-rtf, stt-cpu-rtf). It also reports the 1-minute load average
// at the start and the end (load-start, load-end) to read wall figures by.
// The environment variable KOEL_BENCH_SPHINX_ARGS adds pocketsphinx options
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
	// The shared render cache: the speech is the same from run to run.
	rend, err := NewRenderer("")
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
	wall, cpu, sttCPU := samples{}, samples{}, samples{}
	speech := map[string]time.Duration{}
	recog := map[string]time.Duration{}
	load0 := loadAverage(b)
	b.ResetTimer()
	for range b.N {
		for _, r := range recs {
			c, _, err := st.NewCall(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			cpu0, stt0 := processCPU(b), st.RecogniserCPU()
			_, took, err := c.Say(b.Context(), r.pcm)
			if err != nil {
				b.Fatal(err)
			}
			cpu.add(r.engine, processCPU(b)-cpu0)
			sttCPU.add(r.engine, st.RecogniserCPU()-stt0)
			wall.add(r.engine, took)
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
	b.ReportMetric(load0, "load-start")
	b.ReportMetric(loadAverage(b), "load-end")
	b.ReportMetric(float64(len(recs)), "utterances")
	wall.report(b, "", engines)
	cpu.report(b, "cpu-", nil)
	sttCPU.report(b, "stt-cpu-", engines)
	b.ReportMetric(cpu.mean(), "cpu-ms/event")
	b.ReportMetric(sttCPU.mean(), "stt-cpu-ms/event")
	var sp, rc time.Duration
	for _, e := range engines {
		sp += speech[e]
		rc += recog[e]
	}
	if sp > 0 {
		b.ReportMetric(rc.Seconds()/sp.Seconds(), "sphinx-rtf")
		b.ReportMetric(cpu.sum().Seconds()/sp.Seconds(), "cpu-rtf")
		b.ReportMetric(sttCPU.sum().Seconds()/sp.Seconds(), "stt-cpu-rtf")
	}
}

// samples are per-event durations in milliseconds, overall and by
// synthesizer.
type samples struct {
	all      []float64
	byEngine map[string][]float64
}

func (s *samples) add(engine string, d time.Duration) {
	ms := float64(d.Microseconds()) / 1000
	s.all = append(s.all, ms)
	if s.byEngine == nil {
		s.byEngine = map[string][]float64{}
	}
	s.byEngine[engine] = append(s.byEngine[engine], ms)
}

// report reports prefix+"p50-ms" and prefix+"p95-ms" over all events and
// the same per engine of engines (engine+"-"+prefix+"p50-ms").
func (s samples) report(b *testing.B, prefix string, engines []string) {
	b.ReportMetric(percentile(s.all, 0.50), prefix+"p50-ms")
	b.ReportMetric(percentile(s.all, 0.95), prefix+"p95-ms")
	for _, e := range engines {
		b.ReportMetric(percentile(s.byEngine[e], 0.50), e+"-"+prefix+"p50-ms")
		b.ReportMetric(percentile(s.byEngine[e], 0.95), e+"-"+prefix+"p95-ms")
	}
}

func (s samples) sum() time.Duration {
	var t float64
	for _, v := range s.all {
		t += v
	}
	return time.Duration(t * float64(time.Millisecond))
}

func (s samples) mean() float64 {
	if len(s.all) == 0 {
		return 0
	}
	return float64(s.sum().Microseconds()) / 1000 / float64(len(s.all))
}

// loadAverage is the 1-minute load average (0 where /proc/loadavg is
// missing).
func loadAverage(tb testing.TB) float64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return v
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
