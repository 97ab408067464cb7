// Package audiotest builds test audio for koel's audio, speech and call
// tests: speech from espeak-ng, silence, noise and tones at a given level,
// the G.711 mu-law round trip and concatenation. Everything is 8 kHz mono
// ([audio.SampleRate]) unless said otherwise, and deterministic.
package audiotest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
)

// maxSpeechBytes caps espeak-ng's output (about 4 minutes at 22.05 kHz).
const maxSpeechBytes = 10 << 20

// DefaultVoice is the espeak-ng voice [Speak] uses for an empty voice.
const DefaultVoice = "en-us"

// Speak synthesizes text with espeak-ng (`espeak-ng --stdout -v voice`, the
// text on stdin) and returns it at 8 kHz. It skips the test when espeak-ng
// is not installed and fails it when synthesis fails.
func Speak(tb testing.TB, text, voice string) audio.PCM {
	tb.Helper()
	bin, err := exec.LookPath("espeak-ng")
	if err != nil {
		tb.Skip("audiotest: espeak-ng is not installed (apt-get install espeak-ng); skipping speech test")
	}
	if voice == "" {
		voice = DefaultVoice
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(tb.Context(), bin, "--stdout", "-v", voice)
	cmd.Stdin = strings.NewReader(text)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("audiotest: espeak-ng -v %s: %v: %s", voice, err, strings.TrimSpace(stderr.String()))
	}
	p, err := audio.DecodeWAV(&stdout, maxSpeechBytes)
	if err != nil {
		tb.Fatalf("audiotest: decode espeak-ng output: %v", err)
	}
	out, err := audio.Resample(p, audio.SampleRate)
	if err != nil {
		tb.Fatalf("audiotest: resample espeak-ng output: %v", err)
	}
	return out
}

// ULawRoundTrip returns p encoded to G.711 mu-law and decoded again, as a
// telephone line would deliver it. The rate is kept.
func ULawRoundTrip(p audio.PCM) audio.PCM {
	enc := make([]byte, len(p.Samples))
	audio.EncodeUlaw(enc, p.Samples)
	out := make([]int16, len(enc))
	audio.DecodeUlaw(out, enc)
	return audio.PCM{Rate: p.Rate, Samples: out}
}

// Silence returns d of digital silence at 8 kHz.
func Silence(d time.Duration) audio.PCM {
	return audio.PCM{Rate: audio.SampleRate, Samples: make([]int16, samples(d))}
}

// Noise returns d of white Gaussian noise at 8 kHz whose RMS level is dBFS
// (0 dBFS is an RMS of 32768). The same seed gives the same noise.
func Noise(d time.Duration, dBFS float64, seed uint64) audio.PCM {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rms := level(dBFS)
	out := make([]int16, samples(d))
	for i := range out {
		out[i] = clamp(rng.NormFloat64() * rms)
	}
	return audio.PCM{Rate: audio.SampleRate, Samples: out}
}

// Tone returns d of a sine at hz Hz at 8 kHz whose RMS level is dBFS (its
// peak is 3 dB higher).
func Tone(d time.Duration, hz, dBFS float64) audio.PCM {
	amp := level(dBFS) * math.Sqrt2
	out := make([]int16, samples(d))
	for i := range out {
		out[i] = clamp(amp * math.Sin(2*math.Pi*hz*float64(i)/audio.SampleRate))
	}
	return audio.PCM{Rate: audio.SampleRate, Samples: out}
}

// Concat joins parts end to end. The parts must share one rate (an empty
// list gives empty 8 kHz audio); mixing rates is a bug in the test and
// panics.
func Concat(parts ...audio.PCM) audio.PCM {
	if len(parts) == 0 {
		return audio.PCM{Rate: audio.SampleRate}
	}
	n := 0
	for _, p := range parts {
		if p.Rate != parts[0].Rate {
			panic(fmt.Sprintf("audiotest: Concat of %d Hz and %d Hz audio", parts[0].Rate, p.Rate))
		}
		n += len(p.Samples)
	}
	out := make([]int16, 0, n)
	for _, p := range parts {
		out = append(out, p.Samples...)
	}
	return audio.PCM{Rate: parts[0].Rate, Samples: out}
}

// Mix adds b onto a sample by sample (saturating); the result is as long as
// the longer input. The inputs must share one rate; mixing rates panics.
func Mix(a, b audio.PCM) audio.PCM {
	if a.Rate != b.Rate {
		panic(fmt.Sprintf("audiotest: Mix of %d Hz and %d Hz audio", a.Rate, b.Rate))
	}
	if len(b.Samples) > len(a.Samples) {
		a, b = b, a
	}
	out := append([]int16(nil), a.Samples...)
	for i, s := range b.Samples {
		out[i] = clamp(float64(out[i]) + float64(s))
	}
	return audio.PCM{Rate: a.Rate, Samples: out}
}

// Gain returns p scaled by dB decibels (saturating).
func Gain(p audio.PCM, dB float64) audio.PCM {
	g := math.Pow(10, dB/20)
	out := make([]int16, len(p.Samples))
	for i, s := range p.Samples {
		out[i] = clamp(float64(s) * g)
	}
	return audio.PCM{Rate: p.Rate, Samples: out}
}

// Frames cuts p into consecutive [audio.FrameSamples]-sample frames, the
// last one zero-padded to full length.
func Frames(p audio.PCM) [][]int16 {
	var out [][]int16
	for s := p.Samples; len(s) > 0; {
		f := make([]int16, audio.FrameSamples)
		n := copy(f, s)
		out = append(out, f)
		s = s[n:]
	}
	return out
}

func samples(d time.Duration) int {
	return int(int64(d) * audio.SampleRate / int64(time.Second))
}

func level(dBFS float64) float64 {
	return 32768 * math.Pow(10, dBFS/20)
}

func clamp(v float64) int16 {
	v = math.Round(v)
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}
