package audio_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
)

func TestRecorder(t *testing.T) {
	r := audio.NewRecorder(50 * time.Millisecond) // 400 samples
	f := make([]int16, audio.FrameSamples)
	for i := range f {
		f[i] = int16(i)
	}
	for i := range 2 {
		if err := r.Write(f); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	snap := r.PCM()
	if err := r.Write(f); !errors.Is(err, audio.ErrTooLarge) {
		t.Fatalf("third frame past the cap: %v, want ErrTooLarge", err)
	}
	if got := r.Duration(); got != 50*time.Millisecond {
		t.Fatalf("duration %v after the cap, want 50ms", got)
	}
	if len(snap.Samples) != 320 || snap.Rate != audio.SampleRate {
		t.Fatalf("earlier snapshot changed: %d samples", len(snap.Samples))
	}
	if err := r.Write(f[:1]); !errors.Is(err, audio.ErrTooLarge) {
		t.Fatalf("write when full: %v", err)
	}
	var buf bytes.Buffer
	if err := r.WriteWAV(&buf, audio.EncodingPCM16); err != nil {
		t.Fatal(err)
	}
	p, err := audio.DecodeWAV(&buf, testCap)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(f, f, f[:80])
	if !slices.Equal(p.Samples, want) {
		t.Fatalf("WAV holds %d samples, want the %d recorded", len(p.Samples), len(want))
	}
	r.Truncate(20 * time.Millisecond)
	if r.Duration() != 20*time.Millisecond {
		t.Fatalf("after Truncate(20ms): %v", r.Duration())
	}
	r.Truncate(time.Hour)
	if r.Duration() != 20*time.Millisecond {
		t.Fatalf("Truncate beyond the length changed it: %v", r.Duration())
	}
}

func TestDurationConversions(t *testing.T) {
	tests := []struct {
		n    int
		rate int
		d    time.Duration
	}{
		{160, 8000, 20 * time.Millisecond},
		{8000, 8000, time.Second},
		{1, 8000, 125 * time.Microsecond},
		{22050, 22050, time.Second},
		{0, 8000, 0},
		{5, 0, 0},
	}
	for _, tt := range tests {
		if got := audio.SamplesToDuration(tt.n, tt.rate); got != tt.d {
			t.Errorf("SamplesToDuration(%d, %d) = %v, want %v", tt.n, tt.rate, got, tt.d)
		}
		if tt.rate > 0 {
			if got := audio.DurationToSamples(tt.d, tt.rate); got != tt.n {
				t.Errorf("DurationToSamples(%v, %d) = %d, want %d", tt.d, tt.rate, got, tt.n)
			}
		}
	}
	if got := audio.DurationToSamples(time.Nanosecond, 8000); got != 1 {
		t.Errorf("DurationToSamples(1ns) = %d, want 1 (rounded up)", got)
	}
	if got := (audio.PCM{Rate: 8000, Samples: make([]int16, 12000)}).Duration(); got != 1500*time.Millisecond {
		t.Errorf("Duration = %v", got)
	}
}
