package audio_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/koelvoice/koel/audio"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// sweep is a 1 s logarithmic sweep from 50 Hz to 3.95 kHz at 30000 peak,
// followed by the extreme and boundary values G.711 must get right.
func sweep() []int16 {
	const n = audio.SampleRate
	out := make([]int16, 0, n+16)
	f0, f1 := 50.0, 3950.0
	k := math.Log(f1 / f0)
	for i := range n {
		t := float64(i) / n
		phase := 2 * math.Pi * f0 * (math.Exp(t*k) - 1) / k
		out = append(out, int16(math.Round(30000*math.Sin(phase))))
	}
	return append(out, 0, 1, -1, 2, -2, 31, -32, 32767, -32768, 32635, -32635, 8158, -8159, 4095, -4096, 127)
}

func s16le(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func fromS16le(t *testing.T, b []byte) []int16 {
	t.Helper()
	if len(b)%2 != 0 {
		t.Fatalf("odd s16le length %d", len(b))
	}
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: output differs from golden file at byte %d (got %d bytes, want %d)", name, i, len(got), len(want))
	}
}

func TestG711Golden(t *testing.T) {
	golden(t, "sweep.s16le", s16le(sweep()))
	raw, err := os.ReadFile(filepath.Join("testdata", "sweep.s16le"))
	if err != nil {
		t.Fatal(err)
	}
	src := fromS16le(t, raw)
	codecs := []struct {
		name   string
		encode func([]byte, []int16) int
		decode func([]int16, []byte) int
	}{
		{"ulaw", audio.EncodeUlaw, audio.DecodeUlaw},
		{"alaw", audio.EncodeAlaw, audio.DecodeAlaw},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			enc := make([]byte, len(src))
			if n := c.encode(enc, src); n != len(src) {
				t.Fatalf("encode wrote %d, want %d", n, len(src))
			}
			golden(t, "sweep."+c.name, enc)
			dec := make([]int16, len(enc))
			if n := c.decode(dec, enc); n != len(enc) {
				t.Fatalf("decode wrote %d, want %d", n, len(enc))
			}
			golden(t, "sweep."+c.name+".s16le", s16le(dec))
		})
	}
}

// TestG711Reference checks code points from ITU-T G.711 (and G.191's
// reference tables), independent of the golden files.
func TestG711Reference(t *testing.T) {
	tests := []struct {
		name  string
		in    int16
		ulaw  byte
		alaw  byte
		uback int16
		aback int16
	}{
		{"zero", 0, 0xFF, 0xD5, 0, 8},
		{"max", 32767, 0x80, 0xAA, 32124, 32256},
		{"min", -32768, 0x00, 0x2A, -32124, -32256},
		{"minus one", -1, 0x7F, 0x55, 0, -8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, a := make([]byte, 1), make([]byte, 1)
			audio.EncodeUlaw(u, []int16{tt.in})
			audio.EncodeAlaw(a, []int16{tt.in})
			if u[0] != tt.ulaw || a[0] != tt.alaw {
				t.Fatalf("encode(%d) = ulaw 0x%02X alaw 0x%02X, want 0x%02X 0x%02X", tt.in, u[0], a[0], tt.ulaw, tt.alaw)
			}
			d := make([]int16, 1)
			audio.DecodeUlaw(d, u)
			if d[0] != tt.uback {
				t.Errorf("ulaw decode(0x%02X) = %d, want %d", u[0], d[0], tt.uback)
			}
			audio.DecodeAlaw(d, a)
			if d[0] != tt.aback {
				t.Errorf("alaw decode(0x%02X) = %d, want %d", a[0], d[0], tt.aback)
			}
		})
	}
}

// TestG711Error checks the companding error bound: G.711 keeps 4 mantissa
// bits, so the error is at most one step: 1/16 of the magnitude plus the
// smallest step.
func TestG711Error(t *testing.T) {
	src := make([]int16, 65536)
	for i := range src {
		src[i] = int16(i - 32768)
	}
	enc := make([]byte, len(src))
	dec := make([]int16, len(src))
	for _, c := range []struct {
		name   string
		encode func([]byte, []int16) int
		decode func([]int16, []byte) int
		floor  float64
	}{
		{"ulaw", audio.EncodeUlaw, audio.DecodeUlaw, 8},
		{"alaw", audio.EncodeAlaw, audio.DecodeAlaw, 16},
	} {
		c.encode(enc, src)
		c.decode(dec, enc)
		for i, s := range src {
			mag := math.Min(math.Abs(float64(s)), 32124)
			diff := math.Abs(float64(dec[i]) - float64(max(min(s, 32256), -32256)))
			if s > 32124 || s < -32124 {
				continue // clipped by the format
			}
			if diff > mag/16+c.floor {
				t.Fatalf("%s: %d decodes to %d (error %.0f)", c.name, s, dec[i], diff)
			}
		}
	}
}

func TestG711ShortBuffers(t *testing.T) {
	src := []int16{1, 2, 3, 4}
	dst := make([]byte, 2)
	if n := audio.EncodeUlaw(dst, src); n != 2 {
		t.Errorf("EncodeUlaw into 2 bytes = %d, want 2", n)
	}
	if n := audio.EncodeAlaw(make([]byte, 8), src); n != 4 {
		t.Errorf("EncodeAlaw of 4 samples = %d, want 4", n)
	}
	if n := audio.DecodeUlaw(make([]int16, 3), make([]byte, 10)); n != 3 {
		t.Errorf("DecodeUlaw into 3 samples = %d, want 3", n)
	}
	if n := audio.DecodeAlaw(nil, make([]byte, 10)); n != 0 {
		t.Errorf("DecodeAlaw into nil = %d, want 0", n)
	}
}

func TestG711ZeroAlloc(t *testing.T) {
	frame := make([]int16, audio.FrameSamples)
	for i := range frame {
		frame[i] = int16(i * 200)
	}
	enc := make([]byte, audio.FrameSamples)
	dec := make([]int16, audio.FrameSamples)
	allocs := testing.AllocsPerRun(100, func() {
		audio.EncodeUlaw(enc, frame)
		audio.DecodeUlaw(dec, enc)
		audio.EncodeAlaw(enc, frame)
		audio.DecodeAlaw(dec, enc)
	})
	if allocs != 0 {
		t.Fatalf("G.711 hot path allocates %.1f times per frame", allocs)
	}
}

func BenchmarkG711(b *testing.B) {
	frame := sweep()[:audio.FrameSamples]
	enc := make([]byte, audio.FrameSamples)
	dec := make([]int16, audio.FrameSamples)
	b.Run("EncodeUlaw", func(b *testing.B) {
		for b.Loop() {
			audio.EncodeUlaw(enc, frame)
		}
	})
	b.Run("DecodeUlaw", func(b *testing.B) {
		for b.Loop() {
			audio.DecodeUlaw(dec, enc)
		}
	})
	b.Run("EncodeAlaw", func(b *testing.B) {
		for b.Loop() {
			audio.EncodeAlaw(enc, frame)
		}
	})
	b.Run("DecodeAlaw", func(b *testing.B) {
		for b.Loop() {
			audio.DecodeAlaw(dec, enc)
		}
	})
}
