package audio_test

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

// The acceptance tests for the end-pointer run on speech synthesized with
// espeak-ng and sent through G.711 mu-law, as a caller's audio arrives.
//
// "Last voiced frame" is the VAD's decision: the last 20 ms frame whose
// level is at least max(noise floor + ExitDB, MinSpeechDBFS). On a line that
// is digitally silent between utterances the floor is at MinLevelDBFS, so
// the threshold is MinSpeechDBFS (-45 dBFS). The tests measure that frame
// independently, on the synthesized audio before mu-law, with their own
// level computation (lastLoudFrame), and check the end-pointer against it.

// frameLevels is the test's own RMS level per 20 ms frame, in dBFS.
func frameLevels(s []int16) []float64 {
	var out []float64
	for i := 0; i+audio.FrameSamples <= len(s); i += audio.FrameSamples {
		var e float64
		for _, v := range s[i : i+audio.FrameSamples] {
			e += float64(v) * float64(v)
		}
		out = append(out, 10*math.Log10(e/audio.FrameSamples/(1<<30)+1e-20))
	}
	return out
}

// loudFrames returns the offsets of the start of the first frame and the
// end of the last frame at or above -45 dBFS.
func loudFrames(t *testing.T, s []int16) (first, last time.Duration) {
	t.Helper()
	lv := frameLevels(s)
	fi, li := -1, -1
	for i, l := range lv {
		if l >= -45 {
			if fi < 0 {
				fi = i
			}
			li = i
		}
	}
	if fi < 0 {
		t.Fatal("synthesized audio has no frame above -45 dBFS")
	}
	return time.Duration(fi) * frame, time.Duration(li+1) * frame
}

func within(a, b, tol time.Duration) bool {
	d := a - b
	return d >= -tol && d <= tol
}

type goldenResult struct {
	Reason        audio.EndReason `json:"reason"`
	Spoke         bool            `json:"spoke"`
	SpeechStartMS int64           `json:"speech_start_ms"`
	SpeechEndMS   int64           `json:"speech_end_ms"`
	EndMS         int64           `json:"end_ms"`
}

func toGolden(r audio.EndResult) goldenResult {
	return goldenResult{r.Reason, r.Spoke, r.SpeechStart.Milliseconds(), r.SpeechEnd.Milliseconds(), r.End.Milliseconds()}
}

// goldenResults collects each case's decision into testdata/endpoint/
// golden.json, compared (or rewritten under -update) at the end.
type goldenResults map[string]goldenResult

func (g goldenResults) check(t *testing.T) {
	t.Helper()
	got, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "endpoint", "golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("end-pointer decisions differ from %s:\n%s", path, got)
	}
}

const (
	sentence1 = "Hello, I would like to know the balance of my savings account please."
	sentence2 = "And what are your opening hours on Saturday?"
)

func TestEndpointerSpeech(t *testing.T) {
	lead := audiotest.Silence(500 * time.Millisecond)
	s1 := audiotest.Speak(t, sentence1, "en-us")
	s2 := audiotest.Speak(t, sentence2, "en-gb")
	golden := goldenResults{}
	telephone := audiotest.ULawRoundTrip

	for _, sp := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		name := "silence_" + sp.String()
		t.Run(name, func(t *testing.T) {
			clean := audiotest.Concat(lead, s1, audiotest.Silence(sp+2*time.Second))
			first, last := loudFrames(t, clean.Samples)
			e := mustEndpointer(t, audio.EndpointConfig{SilencePeriod: sp, MaxRecordTime: 30 * time.Second})
			res, done := run(t, e, telephone(clean), audio.FrameSamples)
			golden[name] = toGolden(res)
			if !done || res.Reason != audio.EndSilence || !res.Spoke {
				t.Fatalf("got %+v done=%v, want a silence end", res, done)
			}
			if !within(res.SpeechEnd, last, frame) || !within(res.SpeechStart, first, frame) {
				t.Errorf("speech %v-%v, measured %v-%v", res.SpeechStart, res.SpeechEnd, first, last)
			}
			if !within(res.End, last+sp, frame) || res.End-res.SpeechEnd != sp {
				t.Errorf("end %v, want %v after the last voiced frame (%v measured, %v by the VAD)", res.End, sp, last, res.SpeechEnd)
			}
		})

		name = "pause_" + sp.String()
		t.Run(name, func(t *testing.T) {
			// A pause 200 ms shorter than the silence period, measured from
			// the last loud frame of the first sentence to the first loud
			// frame of the second.
			_, end1 := loudFrames(t, s1.Samples)
			start2, _ := loudFrames(t, s2.Samples)
			gap := sp - 200*time.Millisecond - (s1.Duration() - end1) - start2
			clean := audiotest.Concat(lead, s1, audiotest.Silence(gap), s2, audiotest.Silence(sp+2*time.Second))
			_, last := loudFrames(t, clean.Samples)
			e := mustEndpointer(t, audio.EndpointConfig{SilencePeriod: sp, MaxRecordTime: 30 * time.Second})
			res, done := run(t, e, telephone(clean), audio.FrameSamples)
			golden[name] = toGolden(res)
			if !done || res.Reason != audio.EndSilence {
				t.Fatalf("got %+v done=%v, want a silence end", res, done)
			}
			if !within(res.SpeechEnd, last, frame) || res.End != res.SpeechEnd+sp {
				t.Errorf("ended at %v (speech end %v); the second sentence's last voiced frame ends at %v", res.End, res.SpeechEnd, last)
			}

			// Control: a pause 200 ms longer than the silence period ends
			// the message after the first sentence.
			clean = audiotest.Concat(lead, s1, audiotest.Silence(gap+400*time.Millisecond), s2, audiotest.Silence(sp+2*time.Second))
			e = mustEndpointer(t, audio.EndpointConfig{SilencePeriod: sp, MaxRecordTime: 30 * time.Second})
			res, done = run(t, e, telephone(clean), audio.FrameSamples)
			if want := lead.Duration() + end1; !done || res.Reason != audio.EndSilence || !within(res.SpeechEnd, want, frame) {
				t.Errorf("long pause: got %+v, want the end %v after %v", res, sp, want)
			}
		})
	}

	t.Run("speech_in_noise", func(t *testing.T) {
		// Noise at -40 dBFS under the speech lifts the noise floor, so the
		// quiet tail of the sentence is no longer voiced: the end may come
		// up to 100 ms before the clean measurement, never after it.
		clean := audiotest.Concat(lead, s1, audiotest.Silence(3*time.Second))
		first, last := loudFrames(t, clean.Samples)
		noisy := audiotest.Mix(audiotest.Noise(clean.Duration(), -40, 9), telephone(clean))
		e := mustEndpointer(t, audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 30 * time.Second})
		res, done := run(t, e, noisy, audio.FrameSamples)
		golden["speech_in_noise_-40dBFS"] = toGolden(res)
		if !done || res.Reason != audio.EndSilence || res.End != res.SpeechEnd+time.Second {
			t.Fatalf("got %+v", res)
		}
		if res.SpeechEnd > last+frame || res.SpeechEnd < last-100*time.Millisecond || !within(res.SpeechStart, first, 3*frame) {
			t.Fatalf("speech %v-%v, measured on clean audio %v-%v", res.SpeechStart, res.SpeechEnd, first, last)
		}
	})

	t.Run("max_record_time", func(t *testing.T) {
		clean := audiotest.Concat(lead, s1, s2, audiotest.Silence(3*time.Second))
		for _, max := range []time.Duration{2 * time.Second, 3500 * time.Millisecond} {
			e := mustEndpointer(t, audio.EndpointConfig{SilencePeriod: 2 * time.Second, MaxRecordTime: max})
			res, done := run(t, e, telephone(clean), audio.FrameSamples)
			golden["max_"+max.String()] = toGolden(res)
			if !done || res.Reason != audio.EndMaxDuration || res.End != max || !res.Spoke || res.SpeechEnd > max {
				t.Errorf("max %v: got %+v", max, res)
			}
		}
	})

	t.Run("noise_alone", func(t *testing.T) {
		noise := audiotest.Noise(12*time.Second, -35, 42)
		e := mustEndpointer(t, audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 10 * time.Second, InitialSilence: 5 * time.Second})
		res, done := run(t, e, telephone(noise), audio.FrameSamples)
		golden["noise_-35dBFS"] = toGolden(res)
		if want := (audio.EndResult{Reason: audio.EndNoInput, End: 5 * time.Second}); !done || res != want {
			t.Fatalf("got %+v, want %+v", res, want)
		}
	})

	t.Run("terminator", func(t *testing.T) {
		e := mustEndpointer(t, audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 30 * time.Second, TerminatorKey: '#'})
		frames := audiotest.Frames(telephone(audiotest.Concat(lead, s1)))
		for _, f := range frames[:100] {
			if _, done := e.Write(f); done {
				t.Fatal("ended before the key")
			}
		}
		res, done := e.DTMF('#')
		golden["dtmf"] = toGolden(res)
		if !done || res.Reason != audio.EndDTMF || res.End != 100*frame || !res.Spoke {
			t.Fatalf("got %+v", res)
		}
	})

	t.Run("hangup_mid_speech", func(t *testing.T) {
		clean := audiotest.Concat(lead, s1)
		first, _ := loudFrames(t, clean.Samples)
		rec := audio.NewRecorder(30 * time.Second)
		e := mustEndpointer(t, audio.EndpointConfig{SilencePeriod: time.Second, MaxRecordTime: 30 * time.Second})
		for _, f := range audiotest.Frames(telephone(clean))[:110] {
			if err := rec.Write(f); err != nil {
				t.Fatal(err)
			}
			if _, done := e.Write(f); done {
				t.Fatal("ended mid-sentence")
			}
		}
		res := e.Hangup()
		golden["hangup"] = toGolden(res)
		if res.Reason != audio.EndHangup || !res.Spoke || res.End != 110*frame || !within(res.SpeechStart, first, frame) {
			t.Fatalf("got %+v", res)
		}
		rec.Truncate(res.End)
		if got := rec.PCM().Duration(); got != 110*frame {
			t.Fatalf("recording kept %v, want %v", got, 110*frame)
		}
	})

	if !t.Failed() {
		golden.check(t)
	}
}
