package voiceeval

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
)

// maxBenchSpeech is the longest utterance the Record-event target covers.
const maxBenchSpeech = 4 * time.Second

// BenchmarkRecordEvent measures the KooKoo Record event over the corpus,
// not one sentence: each iteration plays every question and off-topic
// utterance of the test split whose speech is at most 4 s, each in one of
// the default voices in turn (clean µ-law), as a call's Record event to a
// real stack on loopback. It reports the event's p50 and p95 latency and
// the recogniser's real-time factor (pocketsphinx, the only engine built
// in). Target: p95 ≤ 250 ms on 2 cores.
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
	synths := DefaultSynths()
	var recs []audio.PCM
	for i, it := range Select(items, SplitTest) {
		if it.Kind == KindAnswer {
			continue
		}
		s := synths[i%len(synths)]
		sp, err := rend.Speech(b.Context(), s, it.Text)
		if err != nil {
			b.Fatal(err)
		}
		if sp.Duration() > maxBenchSpeech {
			continue
		}
		recs = append(recs, Telephone(sp, VariantClean, Seed(s, it.Text)))
	}
	st, err := NewStack(b.Context(), StackConfig{DataDir: b.TempDir(), PoolSize: 2})
	if errors.Is(err, stt.ErrUnavailable) {
		b.Skipf("pocketsphinx unavailable: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Warm up: the vocabulary build and the first decoders.
	if c, _, err := st.NewCall(b.Context()); err == nil {
		_, _, _ = c.Say(b.Context(), recs[0])
	}
	var lat []float64
	var speech, recog time.Duration
	b.ResetTimer()
	for range b.N {
		for _, r := range recs {
			c, _, err := st.NewCall(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			_, took, err := c.Say(b.Context(), r)
			if err != nil {
				b.Fatal(err)
			}
			lat = append(lat, float64(took.Microseconds())/1000)
			b.StopTimer()
			turns, err := c.Turns(b.Context())
			if err != nil || len(turns) == 0 {
				b.Fatalf("turns: %v (%d)", err, len(turns))
			}
			speech += time.Duration(turns[0].SpeechMS) * time.Millisecond
			recog += time.Duration(turns[0].STTMS) * time.Millisecond
			b.StartTimer()
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.95), "p95-ms")
	b.ReportMetric(float64(len(recs)), "utterances")
	if speech > 0 {
		b.ReportMetric(recog.Seconds()/speech.Seconds(), "stt-rtf")
	}
}
