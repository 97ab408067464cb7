package audio_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// zeroCrossingHz estimates the frequency of a clean tone.
func zeroCrossingHz(s []int16, rate int) float64 {
	n := 0
	for i := 1; i < len(s); i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			n++
		}
	}
	return float64(n) / 2 / (float64(len(s)) / float64(rate))
}

func TestDecodeMP3(t *testing.T) {
	t.Run("tone 44.1 kHz stereo", func(t *testing.T) {
		p, err := audio.DecodeMP3(bytes.NewReader(readFixture(t, "tone-44k-stereo.mp3")), testCap)
		if err != nil {
			t.Fatal(err)
		}
		if p.Rate != 44100 {
			t.Fatalf("rate %d", p.Rate)
		}
		// 0.5 s plus the encoder's delay and padding (under 3 frames).
		if d := p.Duration(); d < 500*time.Millisecond || d > 600*time.Millisecond {
			t.Fatalf("duration %v", d)
		}
		mid := p.Samples[len(p.Samples)/4 : len(p.Samples)*3/4]
		if hz := zeroCrossingHz(mid, p.Rate); math.Abs(hz-1000) > 10 {
			t.Errorf("tone at %.1f Hz, want 1000", hz)
		}
		if l := audio.LevelDBFS(mid); math.Abs(l-(-9)) > 1 { // -6 dBFS peak sine is -9 dBFS RMS
			t.Errorf("level %.1f dBFS, want -9", l)
		}
	})
	t.Run("speech 22.05 kHz mono with ID3v2", func(t *testing.T) {
		p, err := audio.Decode(bytes.NewReader(readFixture(t, "speech-22k-mono.mp3")), testCap)
		if err != nil {
			t.Fatal(err)
		}
		if p.Rate != 22050 {
			t.Fatalf("rate %d", p.Rate)
		}
		if d := p.Duration(); d < 1500*time.Millisecond || d > 3*time.Second {
			t.Fatalf("duration %v", d)
		}
		if l := audio.LevelDBFS(p.Samples); l < -35 || l > -10 {
			t.Fatalf("speech level %.1f dBFS", l)
		}
		down, err := audio.Resample(p, audio.SampleRate)
		if err != nil || down.Rate != 8000 {
			t.Fatalf("resample: %v", err)
		}
	})
}

func TestDecodeMP3BadInput(t *testing.T) {
	tone := readFixture(t, "tone-44k-stereo.mp3")
	mpeg25 := append([]byte{0xFF, 0xE3, 0x18, 0xC4}, make([]byte, 400)...)
	tests := []struct {
		name string
		in   []byte
		cap  int64
		want error
	}{
		{"empty", nil, testCap, audio.ErrEmpty},
		{"text", []byte("this is not an mp3 file at all"), testCap, audio.ErrInvalid},
		{"wav", encodeWAV(t, audio.PCM{Rate: 8000, Samples: []int16{1, 2}}, audio.EncodingPCM16), testCap, audio.ErrInvalid},
		{"ID3 tag larger than input", append([]byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f"), tone...), testCap, audio.ErrInvalid},
		{"ID3 size not syncsafe", append([]byte("ID3\x04\x00\x00\xff\xff\xff\xff"), tone...), testCap, audio.ErrInvalid},
		{"truncated ID3", []byte("ID3\x04\x00"), testCap, audio.ErrInvalid},
		{"ID3 and nothing else", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), testCap, audio.ErrInvalid},
		{"MPEG-2.5", mpeg25, testCap, audio.ErrInvalid},
		{"sync then garbage", append([]byte{0xFF, 0xFB, 0x00, 0x00}, bytes.Repeat([]byte{0xAA}, 300)...), testCap, audio.ErrInvalid},
		{"over the cap", tone, 1000, audio.ErrTooLarge},
		{"non-positive cap", tone, -1, audio.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := audio.DecodeMP3(bytes.NewReader(tt.in), tt.cap)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeMP3 = %d samples, %v; want %v", len(p.Samples), err, tt.want)
			}
			if p.Samples != nil {
				t.Fatal("audio returned alongside an error")
			}
		})
	}
}

// TestDecodeMP3Truncated cuts the fixture inside its first frame header and
// then every 700 bytes: each prefix decodes (to no more audio than the whole
// file) or fails cleanly.
func TestDecodeMP3Truncated(t *testing.T) {
	full := readFixture(t, "tone-44k-stereo.mp3")
	whole, err := audio.DecodeMP3(bytes.NewReader(full), testCap)
	if err != nil {
		t.Fatal(err)
	}
	var cuts []int
	for n := range 16 {
		cuts = append(cuts, n)
	}
	for n := 16; n < len(full); n += 700 {
		cuts = append(cuts, n)
	}
	for _, n := range cuts {
		p, err := audio.DecodeMP3(bytes.NewReader(full[:n]), testCap)
		if err != nil {
			continue
		}
		if len(p.Samples) > len(whole.Samples) {
			t.Fatalf("prefix of %d bytes decoded to more samples (%d) than the file (%d)", n, len(p.Samples), len(whole.Samples))
		}
	}
}

func FuzzDecodeMP3(f *testing.F) {
	f.Add(readFixture(f, "tone-44k-stereo.mp3")[:1200])
	f.Add([]byte("ID3\x04\x00\x00\x00\x00\x00\x02ab\xff\xfb\x90\x00"))
	f.Add([]byte("\xff\xfa500000000000\xff\xff0000" + string(bytes.Repeat([]byte("0"), 124))))
	f.Add([]byte("\xff\xfb%S000000v000\x00\x010000" + string(bytes.Repeat([]byte("0"), 100))))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := audio.DecodeMP3(bytes.NewReader(in), 1<<16)
		if err != nil {
			if !errors.Is(err, audio.ErrInvalid) && !errors.Is(err, audio.ErrUnsupported) && !errors.Is(err, audio.ErrEmpty) && !errors.Is(err, audio.ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		// Memory bound: at most 48 output bytes (24 samples) per input byte.
		if len(p.Samples) == 0 || len(p.Samples) > 24*len(in)+1152 || !audio.RateSupported(p.Rate) {
			t.Fatalf("%d bytes decoded to %d samples at %d Hz", len(in), len(p.Samples), p.Rate)
		}
	})
}

func BenchmarkDecodeMP3(b *testing.B) {
	in := readFixture(b, "speech-22k-mono.mp3")
	for b.Loop() {
		if _, err := audio.DecodeMP3(bytes.NewReader(in), testCap); err != nil {
			b.Fatal(err)
		}
	}
}
