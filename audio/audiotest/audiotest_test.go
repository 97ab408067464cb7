package audiotest_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

func levelDBFS(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return 10 * math.Log10(sum/float64(len(s))/(32768*32768))
}

func TestSpeak(t *testing.T) {
	p := audiotest.Speak(t, "hello, this is a test", "")
	if p.Rate != audio.SampleRate {
		t.Fatalf("rate %d, want %d", p.Rate, audio.SampleRate)
	}
	if d := p.Duration(); d < 500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("a short sentence lasts %v", d)
	}
	if l := levelDBFS(p.Samples); l < -40 {
		t.Fatalf("speech level %.1f dBFS, expected audible speech", l)
	}
	other := audiotest.Speak(t, "hello, this is a test", "en-gb")
	if slices.Equal(other.Samples, p.Samples) {
		t.Fatal("different voices gave identical audio")
	}
}

func TestLevels(t *testing.T) {
	for _, db := range []float64{-35, -20, -6} {
		n := audiotest.Noise(time.Second, db, 7)
		if got := levelDBFS(n.Samples); math.Abs(got-db) > 0.3 {
			t.Errorf("Noise at %v dBFS measures %.2f", db, got)
		}
		tone := audiotest.Tone(time.Second, 1000, db)
		if got := levelDBFS(tone.Samples); math.Abs(got-db) > 0.1 {
			t.Errorf("Tone at %v dBFS measures %.2f", db, got)
		}
	}
	if !slices.Equal(audiotest.Noise(time.Second, -20, 1).Samples, audiotest.Noise(time.Second, -20, 1).Samples) {
		t.Error("same seed gave different noise")
	}
	if slices.Equal(audiotest.Noise(time.Second, -20, 1).Samples, audiotest.Noise(time.Second, -20, 2).Samples) {
		t.Error("different seeds gave the same noise")
	}
}

func TestShapes(t *testing.T) {
	s := audiotest.Silence(time.Second)
	if len(s.Samples) != 8000 || s.Rate != 8000 || slices.ContainsFunc(s.Samples, func(v int16) bool { return v != 0 }) {
		t.Fatalf("Silence(1s) = %d samples at %d Hz", len(s.Samples), s.Rate)
	}
	c := audiotest.Concat(audiotest.Tone(10*time.Millisecond, 500, -6), s)
	if len(c.Samples) != 8080 || c.Samples[8079] != 0 || c.Samples[2] == 0 {
		t.Fatalf("Concat gave %d samples", len(c.Samples))
	}
	if f := audiotest.Frames(c); len(f) != 51 || len(f[50]) != audio.FrameSamples {
		t.Fatalf("Frames of 8080 samples = %d frames", len(f))
	}
	m := audiotest.Mix(audio.PCM{Rate: 8000, Samples: []int16{1, 32767}}, audio.PCM{Rate: 8000, Samples: []int16{2, 5, 9}})
	if !slices.Equal(m.Samples, []int16{3, 32767, 9}) {
		t.Fatalf("Mix = %v", m.Samples)
	}
	g := audiotest.Gain(audio.PCM{Rate: 8000, Samples: []int16{100, -30000}}, 20*math.Log10(2))
	if !slices.Equal(g.Samples, []int16{200, -32768}) {
		t.Fatalf("Gain(+6 dB) = %v", g.Samples)
	}
	u := audiotest.ULawRoundTrip(audio.PCM{Rate: 8000, Samples: []int16{0, 1000, 32767}})
	if !slices.Equal(u.Samples, []int16{0, 988, 32124}) {
		t.Fatalf("ULawRoundTrip = %v", u.Samples)
	}
}

func TestConcatRejectsMixedRates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Concat of mixed rates did not panic")
		}
	}()
	audiotest.Concat(audio.PCM{Rate: 8000}, audio.PCM{Rate: 16000})
}
