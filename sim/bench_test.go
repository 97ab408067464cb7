package sim

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/tts"
)

// percentile returns the p-th percentile (0-100) of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// runCallers runs n clients concurrently, each performing steps, and
// returns every event each saw and each script's error.
func runCallers(b *testing.B, server string, cfg clientConfig, n int, steps []step, clips []audio.PCM) ([][]Event, []error) {
	return runCallersEvery(b, server, cfg, n, 0, steps, clips)
}

// runCallersEvery starts a caller every gap (0: all at once).
func runCallersEvery(b *testing.B, server string, cfg clientConfig, n int, gap time.Duration, steps []step, clips []audio.PCM) ([][]Event, []error) {
	b.Helper()
	api, err := newAPI(testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	events := make([][]Event, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	var arrivals *time.Ticker
	if gap > 0 {
		arrivals = time.NewTicker(gap)
		defer arrivals.Stop()
	}
	for i := range n {
		if arrivals != nil && i > 0 {
			<-arrivals.C
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cc := cfg
			cc.Server = server
			c, err := dialSim(ctx, api, cc)
			if err != nil {
				errs[i] = err
				return
			}
			sc := &script{steps: steps, clips: clips, out: discardWriter{}}
			errs[i] = sc.run(ctx, c)
			_ = c.hangup()
			events[i] = sc.seen
		}()
	}
	wg.Wait()
	return events, errs
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// clip synthesizes a caller utterance once.
func clip(tb testing.TB, s tts.Synthesizer, text string) audio.PCM {
	tb.Helper()
	p, err := s.Synthesize(context.Background(), text, voiceNamed(""))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkReplyLatency measures, with the demo bot in process (FAQ bot,
// engine, kookoo.App, pocketsphinx fast path) and espeak-ng, the time from
// the end-pointer firing to the first RTP frame of the reply. Four callers
// ask questions in parallel; every turn is one sample. tts=cold
// synthesizes every reply; tts=cache goes through tts.Cache as cmd/koel
// does (repeated answers are not synthesized again).
func BenchmarkReplyLatency(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "tts=cold"
		if cached {
			name = "tts=cache"
		}
		b.Run(name, func(b *testing.B) {
			ds := startDemo(b, cached)
			synth := testTTS(b)
			questions := []string{"what are your opening hours", "what is your address", "where is my refund"}
			const callers = 4
			turns := max(1, (b.N+callers-1)/callers)
			var steps []step
			var clips []audio.PCM
			for i := range turns {
				steps = append(steps, step{kind: "wav"})
				clips = append(clips, clip(b, synth, questions[i%len(questions)]))
			}
			b.ResetTimer()
			events, errs := runCallers(b, ds.srv.URL, clientConfig{Connection: "demo", SilencePeriod: 0.6}, callers, steps, clips)
			b.StopTimer()
			var lat []float64
			for i, evs := range events {
				if errs[i] != nil {
					b.Errorf("caller %d: %v", i, errs[i])
				}
				for _, ev := range evs {
					if ev.Type == EventTurn && ev.ReplyMS >= 0 {
						lat = append(lat, float64(ev.ReplyMS))
					}
				}
			}
			slices.Sort(lat)
			b.ReportMetric(percentile(lat, 50), "p50_ms")
			b.ReportMetric(percentile(lat, 95), "p95_ms")
			b.ReportMetric(float64(len(lat)), "turns")
		})
	}
}

// echoRouter serves an echo KooKoo app in process at /kookoo/{connection}:
// each recording gets a short reply and the next <record>; after turns
// recordings, goodbye and <hangup/>.
func echoRouter(silence string, turns int) *mux.Router {
	r := mux.NewRouter()
	var mu sync.Mutex
	counts := map[string]int{}
	r.HandleFunc("/kookoo/{connection}", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		sid := q.Get("sid")
		rec := fmt.Sprintf(`<record format="wav" silence="%s" maxduration="10">%s</record>`, silence, sid)
		switch q.Get("event") {
		case "NewCall":
			xmlResponse(w, `<response><playtext>Hello.</playtext>`+rec+`</response>`)
		case "Record":
			mu.Lock()
			counts[sid]++
			n := counts[sid]
			mu.Unlock()
			if n >= turns {
				xmlResponse(w, `<response><playtext>Goodbye.</playtext><hangup/></response>`)
				return
			}
			xmlResponse(w, `<response><playtext>Got it.</playtext>`+rec+`</response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	return r
}

// BenchmarkEndpointerFiring measures when the end-pointer fires after the
// caller's last speech frame arrives, against the configured silence
// period (target: within 20 ms).
func BenchmarkEndpointerFiring(b *testing.B) {
	needEspeak(b)
	cache, err := tts.NewCache(testTTS(b), tts.CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	const silence = 800 * time.Millisecond
	router := echoRouter("1", 1000)
	ts := startSim(b, func(c *Config) { c.App = router; c.TTS = cache })
	const callers = 4
	turns := max(1, (b.N+callers-1)/callers)
	u := clip(b, cache, "what are your opening hours")
	steps := make([]step, turns)
	clips := make([]audio.PCM, turns)
	for i := range steps {
		steps[i], clips[i] = step{kind: "wav"}, u
	}
	b.ResetTimer()
	events, errs := runCallers(b, ts.srv.URL, clientConfig{Connection: "echo", SilencePeriod: silence.Seconds()}, callers, steps, clips)
	b.StopTimer()
	var errsMS []float64
	for i, evs := range events {
		if errs[i] != nil {
			b.Errorf("caller %d: %v", i, errs[i])
		}
		for _, ev := range evs {
			if ev.Type == EventTurn && ev.EndpointMS >= 0 {
				errsMS = append(errsMS, math.Abs(float64(ev.EndpointMS)-float64(silence.Milliseconds())))
			}
		}
	}
	slices.Sort(errsMS)
	b.ReportMetric(percentile(errsMS, 50), "p50_err_ms")
	b.ReportMetric(percentile(errsMS, 95), "p95_err_ms")
	b.ReportMetric(percentile(errsMS, 100), "max_err_ms")
	b.ReportMetric(float64(len(errsMS)), "turns")
}

// BenchmarkConcurrentCalls runs N CLI clients over loopback, each saying
// three utterances to an in-process echo app, and reports failed calls and
// outgoing frames more than 40 ms late. The largest N with zero of both is
// the capacity figure. Callers arrive all at once (arrival=burst: N DTLS
// handshakes in the same instant) or one every 20 ms (arrival=20ms).
func BenchmarkConcurrentCalls(b *testing.B) {
	needEspeak(b)
	for _, tc := range []struct {
		n   int
		gap time.Duration
	}{{10, 0}, {25, 0}, {50, 0}, {50, 20 * time.Millisecond}, {75, 20 * time.Millisecond}, {100, 20 * time.Millisecond}, {150, 20 * time.Millisecond}} {
		arrival := "burst"
		if tc.gap > 0 {
			arrival = tc.gap.String()
		}
		n := tc.n
		b.Run(fmt.Sprintf("calls=%d/arrival=%s", n, arrival), func(b *testing.B) {
			cache, err := tts.NewCache(testTTS(b), tts.CacheConfig{})
			if err != nil {
				b.Fatal(err)
			}
			ts := startSim(b, func(c *Config) { c.App = echoRouter("1", 3); c.TTS = cache; c.MaxCalls = n })
			texts := []string{"hello there", "what are your opening hours", "thank you"}
			var steps []step
			var clips []audio.PCM
			for _, t := range texts {
				steps = append(steps, step{kind: "wav"})
				clips = append(clips, clip(b, cache, t))
			}
			var failed, turns int
			for b.Loop() {
				events, errs := runCallersEvery(b, ts.srv.URL, clientConfig{Connection: "echo"}, n, tc.gap, steps, clips)
				for i := range errs {
					if errs[i] != nil {
						failed++
						b.Logf("call %d: %v", i, errs[i])
					}
					for _, ev := range events[i] {
						if ev.Type == EventTurn && ev.ReplyMS >= 0 {
							turns++
						}
					}
				}
			}
			late := testutil.ToFloat64(ts.sim.m.framesLate)
			sent := testutil.ToFloat64(ts.sim.m.framesSent)
			b.ReportMetric(float64(failed), "failed_calls")
			b.ReportMetric(float64(turns), "answered_turns")
			b.ReportMetric(late, "late_frames")
			b.ReportMetric(sent, "frames_sent")
		})
	}
}
