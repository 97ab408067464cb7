package audio_test

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
)

// sine returns d of a sine at hz with the given peak, at rate Hz.
func sine(rate int, d time.Duration, hz, peak float64) audio.PCM {
	n := int(int64(d) * int64(rate) / int64(time.Second))
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(peak * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))))
	}
	return audio.PCM{Rate: rate, Samples: s}
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

var ratePairs = [][2]int{
	{8000, 16000}, {16000, 8000}, {22050, 8000}, {44100, 8000}, {48000, 8000},
	{11025, 8000}, {24000, 8000}, {32000, 8000}, {8000, 22050}, {8000, 48000},
}

func TestResampleLength(t *testing.T) {
	for _, pr := range ratePairs {
		for _, n := range []int{0, 1, 2, 159, 160, 441, 12345} {
			out, err := audio.Resample(audio.PCM{Rate: pr[0], Samples: make([]int16, n)}, pr[1])
			if err != nil {
				t.Fatal(err)
			}
			want := (n*pr[1] + pr[0] - 1) / pr[0]
			if len(out.Samples) != want || out.Rate != pr[1] {
				t.Errorf("%d->%d Hz of %d samples: %d samples at %d Hz, want %d", pr[0], pr[1], n, len(out.Samples), out.Rate, want)
			}
		}
	}
}

// TestResampleTone checks in-band fidelity against the analytic sine at the
// new rate: the filter is centred, so output sample n lies at time n/to.
func TestResampleTone(t *testing.T) {
	for _, pr := range ratePairs {
		for _, hz := range []float64{300, 1000, 3000} {
			in := sine(pr[0], 500*time.Millisecond, hz, 16000)
			out, err := audio.Resample(in, pr[1])
			if err != nil {
				t.Fatal(err)
			}
			ideal := sine(pr[1], 500*time.Millisecond, hz, 16000).Samples
			// Skip 20 ms at both ends, where the input starts and stops abruptly.
			edge := pr[1] / 50
			got, want := out.Samples[edge:len(ideal)-edge], ideal[edge:len(ideal)-edge]
			diff := make([]int16, len(got))
			for i := range got {
				diff[i] = got[i] - want[i]
			}
			snr := 20 * math.Log10(rms(want)/rms(diff))
			if snr < 50 {
				t.Errorf("%d->%d Hz, %v Hz tone: SNR %.1f dB, want >= 50", pr[0], pr[1], hz, snr)
			}
		}
	}
}

// TestResampleAliasRejection sends tones above the output's Nyquist
// frequency (or, upsampling, checks no image appears) and requires them to
// be attenuated by at least 60 dB.
func TestResampleAliasRejection(t *testing.T) {
	tests := []struct {
		from, to int
		hz       float64
	}{
		{16000, 8000, 5000},
		{44100, 8000, 6000},
		{48000, 8000, 12000},
		{22050, 8000, 4500},
	}
	for _, tt := range tests {
		in := sine(tt.from, 500*time.Millisecond, tt.hz, 16000)
		out, err := audio.Resample(in, tt.to)
		if err != nil {
			t.Fatal(err)
		}
		edge := tt.to / 50
		att := 20 * math.Log10(rms(in.Samples)/math.Max(rms(out.Samples[edge:len(out.Samples)-edge]), 1e-3))
		if att < 60 {
			t.Errorf("%d->%d Hz: %v Hz tone attenuated by %.1f dB, want >= 60", tt.from, tt.to, tt.hz, att)
		}
	}
}

func TestResampleStreamingMatchesWhole(t *testing.T) {
	for _, pr := range ratePairs {
		in := sine(pr[0], 300*time.Millisecond, 700, 20000)
		whole, err := audio.Resample(in, pr[1])
		if err != nil {
			t.Fatal(err)
		}
		r, err := audio.NewResampler(pr[0], pr[1])
		if err != nil {
			t.Fatal(err)
		}
		for round := range 2 { // a Resampler is reusable after Flush
			var got []int16
			sizes := []int{1, 160, 7, 0, 333, 2}
			s := in.Samples
			for i := 0; len(s) > 0; i++ {
				n := min(sizes[i%len(sizes)], len(s))
				got = r.Process(got, s[:n])
				s = s[n:]
			}
			got = r.Flush(got)
			if !slices.Equal(got, whole.Samples) {
				t.Fatalf("%d->%d Hz round %d: streaming output (%d samples) differs from whole-buffer output (%d)", pr[0], pr[1], round, len(got), len(whole.Samples))
			}
		}
	}
}

func TestResampleDC(t *testing.T) {
	in := audio.PCM{Rate: 44100, Samples: slices.Repeat([]int16{-12345}, 44100/2)}
	out, err := audio.Resample(in, 8000)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out.Samples[200 : len(out.Samples)-200] {
		if v < -12346 || v > -12344 {
			t.Fatalf("DC -12345 resampled to %d at %d", v, i+200)
		}
	}
}

func TestResampleErrors(t *testing.T) {
	for _, pr := range [][2]int{{0, 8000}, {8000, -1}, {8000, 1 << 20}, {44099, 8000}} {
		if _, err := audio.NewResampler(pr[0], pr[1]); !errors.Is(err, audio.ErrUnsupported) {
			t.Errorf("NewResampler(%d, %d) = %v, want ErrUnsupported", pr[0], pr[1], err)
		}
		if _, err := audio.Resample(audio.PCM{Rate: pr[0], Samples: []int16{1}}, pr[1]); !errors.Is(err, audio.ErrUnsupported) {
			t.Errorf("Resample(%d -> %d) = %v, want ErrUnsupported", pr[0], pr[1], err)
		}
	}
}

func TestResampleIdentity(t *testing.T) {
	in := audio.PCM{Rate: 8000, Samples: []int16{1, 2, 3}}
	out, err := audio.Resample(in, 8000)
	if err != nil || !slices.Equal(out.Samples, in.Samples) {
		t.Fatalf("Resample to the same rate = %v, %v", out, err)
	}
	out.Samples[0] = 9
	if in.Samples[0] != 1 {
		t.Fatal("Resample to the same rate shares the input's samples")
	}
	r, err := audio.NewResampler(16000, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Flush(r.Process(nil, in.Samples)); !slices.Equal(got, in.Samples) {
		t.Fatalf("identity Resampler = %v", got)
	}
}

func BenchmarkResample(b *testing.B) {
	for _, pr := range [][2]int{{8000, 16000}, {22050, 8000}, {44100, 8000}, {48000, 8000}} {
		in := sine(pr[0], 5*time.Second, 440, 10000)
		b.Run(strconv.Itoa(pr[0])+"to"+strconv.Itoa(pr[1])+"_5s", func(b *testing.B) {
			for b.Loop() {
				if _, err := audio.Resample(in, pr[1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("stream_8000to16000_frame", func(b *testing.B) {
		r, err := audio.NewResampler(8000, 16000)
		if err != nil {
			b.Fatal(err)
		}
		frame := sine(8000, audio.FrameDuration, 440, 10000).Samples
		dst := make([]int16, 0, 2*audio.FrameSamples)
		for b.Loop() {
			dst = r.Process(dst[:0], frame)
		}
	})
}
