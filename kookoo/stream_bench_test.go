package kookoo

import (
	"fmt"

	"github.com/koelvoice/koel/audio/tts"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchQuestions are varied demo questions (no sentence repeated within a
// call), as a caller would ask them.
var benchQuestions = []string{
	"what are your opening hours", "what is your address", "where is my order", "how much is delivery",
	"what is the warranty", "reset my password", "are there any offers", "can i buy on emi",
	"how long does delivery take", "i need an invoice", "where is my refund", "do you accept upi",
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// streamCall runs one fake-KooKoo call asking questions in turn; it
// returns how many were answered (a reply heard after each question).
func streamCall(b *testing.B, sh *streamHarness, sid string, questions []string) int {
	f := dialFake(b, sh.newCallB(b, "live", sid).URL, sid, true)
	defer f.close()
	f.waitQuiet(b, 100, 600*time.Millisecond, "the welcome")
	answered := 0
	for _, q := range questions {
		played, _, _, _ := f.snapshot()
		f.say(benchAudio(b, q))
		f.waitQuiet(b, played+50, 600*time.Millisecond, "the answer to "+q)
		answered++
	}
	return answered
}

var (
	benchAudioMu    sync.Mutex
	benchAudioCache = map[string][]int16{}
)

// benchAudio synthesizes a question once per process.
func benchAudio(b testing.TB, q string) []int16 {
	benchAudioMu.Lock()
	defer benchAudioMu.Unlock()
	if a, ok := benchAudioCache[q]; ok {
		return a
	}
	a := telephone(b, q).Samples
	benchAudioCache[q] = a
	return a
}

// BenchmarkStreamReplyLatency measures, on the stream path with the
// in-process FAQ bot, pocketsphinx and espeak-ng, the time from the
// end-pointer ending the caller's turn to the first reply packet written
// on the socket (p50, p95), over varied questions.
func BenchmarkStreamReplyLatency(b *testing.B) {
	sh := newStreamHarness(b, harnessOptions{stt: newSphinx(b)}, StreamConfig{TTS: cachedTTS(b)})
	var lat latencies
	sh.stream.onReplyLatency = lat.add
	// Warm the recogniser's vocabulary model outside the measurement.
	streamCall(b, sh, sidN(900), benchQuestions[:1])
	lat = latencies{}
	b.ResetTimer()
	for i := range b.N {
		qs := make([]string, 6)
		for j := range qs {
			qs[j] = benchQuestions[(i*6+j)%len(benchQuestions)]
		}
		streamCall(b, sh, sidN(901+i), qs)
	}
	b.StopTimer()
	b.ReportMetric(float64(lat.pct(0.5).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat.pct(0.95).Microseconds())/1000, "p95_ms")
	b.ReportMetric(float64(len(lat.d)), "turns")
}

// BenchmarkStreamConcurrentCalls runs n fake-KooKoo stream calls at once,
// each asking three different questions; every turn must be answered.
func BenchmarkStreamConcurrentCalls(b *testing.B) {
	for _, n := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) {
			sh := newStreamHarness(b, harnessOptions{stt: newSphinx(b)}, StreamConfig{TTS: cachedTTS(b)})
			var lat latencies
			sh.stream.onReplyLatency = lat.add
			streamCall(b, sh, sidN(800), benchQuestions[:1])
			lat = latencies{}
			b.ResetTimer()
			total, answered := 0, 0
			for i := range b.N {
				var wg sync.WaitGroup
				var mu sync.Mutex
				for c := range n {
					qs := []string{benchQuestions[(c*3)%len(benchQuestions)], benchQuestions[(c*3+1)%len(benchQuestions)], benchQuestions[(c*3+2)%len(benchQuestions)]}
					wg.Add(1)
					go func() {
						defer wg.Done()
						got := streamCall(b, sh, fmt.Sprintf("%d%03d%03d", 7000, i, c), qs)
						mu.Lock()
						total += len(qs)
						answered += got
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			b.StopTimer()
			if answered != total {
				b.Fatalf("%d of %d turns answered", answered, total)
			}
			b.ReportMetric(float64(answered), "turns_answered")
			b.ReportMetric(float64(lat.pct(0.95).Microseconds())/1000, "p95_ms")
		})
	}
}

// cachedTTS is espeak-ng behind the in-memory cache, as koel serve wires
// text-to-speech (replies repeat across callers).
func cachedTTS(b testing.TB) tts.Synthesizer {
	c, err := tts.NewCache(newEspeak(b), tts.CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	return c
}
