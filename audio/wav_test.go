package audio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

const testCap = 1 << 20

func encodeWAV(t testing.TB, p audio.PCM, enc audio.Encoding) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, p, enc); err != nil {
		t.Fatalf("EncodeWAV: %v", err)
	}
	return buf.Bytes()
}

// wantAfter is what a lossless decoder must return for p stored as enc.
func wantAfter(p audio.PCM, enc audio.Encoding) []int16 {
	out := make([]int16, len(p.Samples))
	switch enc {
	case audio.EncodingUlaw:
		b := make([]byte, len(p.Samples))
		audio.EncodeUlaw(b, p.Samples)
		audio.DecodeUlaw(out, b)
	case audio.EncodingAlaw:
		b := make([]byte, len(p.Samples))
		audio.EncodeAlaw(b, p.Samples)
		audio.DecodeAlaw(out, b)
	default:
		copy(out, p.Samples)
	}
	return out
}

func TestWAVRoundTrip(t *testing.T) {
	for _, enc := range []audio.Encoding{audio.EncodingPCM16, audio.EncodingUlaw, audio.EncodingAlaw} {
		for _, rate := range []int{8000, 16000, 22050, 44100, 48000} {
			for _, n := range []int{1, 7, 160, 4097} { // odd lengths exercise the pad byte
				p := audiotest.Noise(time.Duration(n)*125*time.Microsecond, -10, uint64(n)) // n samples at 8 kHz
				p.Rate = rate
				data := encodeWAV(t, p, enc)
				if len(data)%2 != 0 {
					t.Fatalf("%v/%d/%d: RIFF file of odd length %d", enc, rate, n, len(data))
				}
				got, err := audio.DecodeWAV(bytes.NewReader(data), testCap)
				if err != nil {
					t.Fatalf("%v/%d/%d: DecodeWAV: %v", enc, rate, n, err)
				}
				if got.Rate != rate || !slices.Equal(got.Samples, wantAfter(p, enc)) {
					t.Fatalf("%v/%d/%d: round trip changed the audio (rate %d, %d samples)", enc, rate, n, got.Rate, len(got.Samples))
				}
			}
		}
	}
}

// wavHeader builds a canonical PCM header with the given fields.
type wavHeader struct {
	riff     string
	tag      uint16
	channels uint16
	rate     uint32
	align    uint16
	bits     uint16
	fmtSize  uint32
	dataSize uint32
	extra    []byte // chunks between fmt and data
}

func (h wavHeader) bytes(data []byte) []byte {
	le := binary.LittleEndian
	b := []byte(h.riff)
	b = le.AppendUint32(b, 0x7ffff024)
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, h.fmtSize)
	f := le.AppendUint16(nil, h.tag)
	f = le.AppendUint16(f, h.channels)
	f = le.AppendUint32(f, h.rate)
	f = le.AppendUint32(f, h.rate*uint32(h.align))
	f = le.AppendUint16(f, h.align)
	f = le.AppendUint16(f, h.bits)
	for uint32(len(f)) < h.fmtSize {
		f = append(f, 0)
	}
	b = append(b, f[:h.fmtSize]...)
	b = append(b, h.extra...)
	b = append(b, "data"...)
	b = le.AppendUint32(b, h.dataSize)
	return append(b, data...)
}

func pcmHeader() wavHeader {
	return wavHeader{riff: "RIFF", tag: 1, channels: 1, rate: 8000, align: 2, bits: 16, fmtSize: 16, dataSize: 8}
}

// TestEncodeWAVGolden pins the bytes EncodeWAV writes, headers included.
func TestEncodeWAVGolden(t *testing.T) {
	p := audio.PCM{Rate: 8000, Samples: []int16{0, 1000, -1000, 32767, -32768}}
	for _, enc := range []audio.Encoding{audio.EncodingPCM16, audio.EncodingUlaw, audio.EncodingAlaw} {
		t.Run(enc.String(), func(t *testing.T) {
			golden(t, filepath.Join("wav", enc.String()+".wav"), encodeWAV(t, p, enc))
		})
	}
}

func TestDecodeWAVVariants(t *testing.T) {
	data := s16le([]int16{100, -100, 3000, -3000})
	stereo := s16le([]int16{1000, 3000, -1000, -3001, 32767, 32767})
	ext := pcmHeader()
	ext.tag, ext.fmtSize = 0xFFFE, 40
	extBytes := ext.bytes(data)
	// The sub-format GUID starts at offset 20+24 of the file.
	binary.LittleEndian.PutUint16(extBytes[20+24:], 1)
	tests := []struct {
		name string
		in   []byte
		rate int
		want []int16
	}{
		{"canonical", pcmHeader().bytes(data), 8000, []int16{100, -100, 3000, -3000}},
		{"espeak bogus size reads to EOF", func() []byte {
			h := pcmHeader()
			h.rate, h.dataSize = 22050, 0x7ffff000
			return h.bytes(data)
		}(), 22050, []int16{100, -100, 3000, -3000}},
		{"size 0 reads to EOF", func() []byte { h := pcmHeader(); h.dataSize = 0; return h.bytes(data) }(), 8000, []int16{100, -100, 3000, -3000}},
		{"size 0xFFFFFFFF reads to EOF", func() []byte { h := pcmHeader(); h.dataSize = 0xFFFFFFFF; return h.bytes(data) }(), 8000, []int16{100, -100, 3000, -3000}},
		{"size shorter than stream stops at size", func() []byte { h := pcmHeader(); h.dataSize = 4; return h.bytes(data) }(), 8000, []int16{100, -100}},
		{"trailing odd byte dropped", func() []byte { h := pcmHeader(); h.dataSize = 0; return h.bytes(append(data, 7)) }(), 8000, []int16{100, -100, 3000, -3000}},
		{"stereo downmixed", func() []byte {
			h := pcmHeader()
			h.channels, h.align, h.dataSize = 2, 4, uint32(len(stereo))
			return h.bytes(stereo)
		}(), 8000, []int16{2000, -2000, 32767}},
		{"unknown chunks skipped with padding", func() []byte {
			h := pcmHeader()
			h.extra = append([]byte("LIST\x03\x00\x00\x00abc\x00"), []byte("fact\x04\x00\x00\x00\x04\x00\x00\x00")...)
			return h.bytes(data)
		}(), 8000, []int16{100, -100, 3000, -3000}},
		{"extensible PCM", extBytes, 8000, []int16{100, -100, 3000, -3000}},
		{"mu-law", func() []byte {
			h := pcmHeader()
			h.tag, h.align, h.bits, h.dataSize = 7, 1, 8, 2
			return h.bytes([]byte{0xFF, 0x80})
		}(), 8000, []int16{0, 32124}},
		{"A-law", func() []byte {
			h := pcmHeader()
			h.tag, h.align, h.bits, h.dataSize = 6, 1, 8, 2
			return h.bytes([]byte{0xD5, 0xAA})
		}(), 8000, []int16{8, 32256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := audio.DecodeWAV(bytes.NewReader(tt.in), testCap)
			if err != nil {
				t.Fatalf("DecodeWAV: %v", err)
			}
			if got.Rate != tt.rate || !slices.Equal(got.Samples, tt.want) {
				t.Fatalf("got %d Hz %v, want %d Hz %v", got.Rate, got.Samples, tt.rate, tt.want)
			}
		})
	}
}

func TestDecodeWAVBadInput(t *testing.T) {
	data := s16le([]int16{1, 2, 3, 4})
	mod := func(f func(*wavHeader)) []byte {
		h := pcmHeader()
		f(&h)
		return h.bytes(data)
	}
	tests := []struct {
		name string
		in   []byte
		cap  int64
		want error
	}{
		{"empty", nil, testCap, audio.ErrInvalid},
		{"not audio", []byte("<html><body>404 not found</body></html>"), testCap, audio.ErrInvalid},
		{"RIFF but not WAVE", append([]byte("RIFF\x04\x00\x00\x00AVI "), data...), testCap, audio.ErrInvalid},
		{"RF64", mod(func(h *wavHeader) { h.riff = "RF64" }), testCap, audio.ErrUnsupported},
		{"zero channels", mod(func(h *wavHeader) { h.channels = 0 }), testCap, audio.ErrInvalid},
		{"too many channels", mod(func(h *wavHeader) { h.channels, h.align = 9, 18 }), testCap, audio.ErrUnsupported},
		{"odd sample rate", mod(func(h *wavHeader) { h.rate = 12345 }), testCap, audio.ErrUnsupported},
		{"huge sample rate", mod(func(h *wavHeader) { h.rate = 0xFFFFFFFF }), testCap, audio.ErrUnsupported},
		{"zero sample rate", mod(func(h *wavHeader) { h.rate = 0 }), testCap, audio.ErrUnsupported},
		{"24-bit", mod(func(h *wavHeader) { h.bits, h.align = 24, 3 }), testCap, audio.ErrUnsupported},
		{"float", mod(func(h *wavHeader) { h.tag, h.bits, h.align = 3, 32, 4 }), testCap, audio.ErrUnsupported},
		{"block align mismatch", mod(func(h *wavHeader) { h.align = 4 }), testCap, audio.ErrInvalid},
		{"fmt too small", mod(func(h *wavHeader) { h.fmtSize = 8 }), testCap, audio.ErrInvalid},
		{"fmt huge", append([]byte("RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\xff\x7f"), make([]byte, 64)...), testCap, audio.ErrInvalid},
		{"huge unknown chunk truncated", mod(func(h *wavHeader) { h.extra = []byte("junk\xff\xff\xff\xffab") }), testCap, audio.ErrInvalid},
		{"data before fmt", append([]byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00"), data...), testCap, audio.ErrInvalid},
		{"no data chunk", []byte("RIFF\x00\x00\x00\x00WAVE"), testCap, audio.ErrInvalid},
		{"empty data", mod(func(h *wavHeader) { h.dataSize = 0 })[:44], testCap, audio.ErrEmpty},
		{"over the cap", mod(func(h *wavHeader) { h.dataSize = 0 }), 40, audio.ErrTooLarge},
		{"data over the cap", append(mod(func(h *wavHeader) { h.dataSize = 1000 }), make([]byte, 1000)...), 500, audio.ErrTooLarge},
		{"non-positive cap", pcmHeader().bytes(data), 0, audio.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := audio.DecodeWAV(bytes.NewReader(tt.in), tt.cap)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeWAV error = %v, want %v", err, tt.want)
			}
			if p.Samples != nil || p.Rate != 0 {
				t.Fatalf("DecodeWAV returned audio alongside an error: %d Hz, %d samples", p.Rate, len(p.Samples))
			}
		})
	}
}

// TestDecodeWAVTruncated cuts a valid file at every byte of its header: each
// prefix is an error or, once the data has started, a prefix of the audio.
func TestDecodeWAVTruncated(t *testing.T) {
	p := audio.PCM{Rate: 8000, Samples: []int16{5, 6, 7, 8}}
	full := encodeWAV(t, p, audio.EncodingPCM16)
	for n := range len(full) {
		got, err := audio.DecodeWAV(bytes.NewReader(full[:n]), testCap)
		if n < 46 { // 44-byte header plus one sample
			if err == nil {
				t.Fatalf("prefix of %d bytes decoded to %v", n, got.Samples)
			}
			continue
		}
		if err != nil || !slices.Equal(got.Samples, p.Samples[:(n-44)/2]) {
			t.Fatalf("prefix of %d bytes: %v, %v", n, got.Samples, err)
		}
	}
}

// TestDecodeWAVMemoryBounded checks that a header claiming 2 GB of data
// costs memory in proportion to the bytes actually sent.
func TestDecodeWAVMemoryBounded(t *testing.T) {
	h := pcmHeader()
	h.dataSize = 0x7fffffff
	in := h.bytes(make([]byte, 1000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := audio.DecodeWAV(bytes.NewReader(in), 1<<31); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Fatalf("decoding 1 kB allocated %d bytes", grew)
	}
}

func TestEncodeWAVErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := audio.EncodeWAV(&buf, audio.PCM{Rate: 12345, Samples: []int16{1}}, audio.EncodingPCM16); !errors.Is(err, audio.ErrUnsupported) {
		t.Errorf("odd rate: %v, want ErrUnsupported", err)
	}
	if err := audio.EncodeWAV(&buf, audio.PCM{Rate: 8000, Samples: []int16{1}}, audio.Encoding(9)); !errors.Is(err, audio.ErrUnsupported) {
		t.Errorf("unknown encoding: %v, want ErrUnsupported", err)
	}
	werr := errors.New("disk full")
	if err := audio.EncodeWAV(failWriter{werr}, audio.PCM{Rate: 8000, Samples: []int16{1}}, audio.EncodingUlaw); !errors.Is(err, werr) {
		t.Errorf("writer error: %v, want it wrapped", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestEncodingString(t *testing.T) {
	for enc, want := range map[audio.Encoding]string{audio.EncodingPCM16: "pcm16", audio.EncodingUlaw: "ulaw", audio.EncodingAlaw: "alaw", 7: "encoding(7)"} {
		if got := enc.String(); got != want {
			t.Errorf("Encoding(%d).String() = %q, want %q", int(enc), got, want)
		}
	}
}

func TestDecodeSniffs(t *testing.T) {
	p := audio.PCM{Rate: 16000, Samples: []int16{1, -2, 3}}
	got, err := audio.Decode(bytes.NewReader(encodeWAV(t, p, audio.EncodingPCM16)), testCap)
	if err != nil || !slices.Equal(got.Samples, p.Samples) || got.Rate != 16000 {
		t.Fatalf("Decode(wav) = %v, %v", got, err)
	}
	for name, tt := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":      {nil, audio.ErrEmpty},
		"text":       {[]byte("hello"), audio.ErrUnsupported},
		"one byte":   {[]byte{0xFF}, audio.ErrUnsupported},
		"bad mp3":    {[]byte{0xFF, 0xFB, 0x90, 0x00, 1, 2, 3}, audio.ErrInvalid},
		"bad riff":   {[]byte("RIFF\x00"), audio.ErrInvalid},
		"reader err": {nil, io.ErrClosedPipe},
	} {
		t.Run(name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tt.in)
			if tt.want == io.ErrClosedPipe {
				r = errReader{io.ErrClosedPipe}
			}
			if _, err := audio.Decode(r, testCap); !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func FuzzDecodeWAV(f *testing.F) {
	p := audio.PCM{Rate: 8000, Samples: []int16{0, 1000, -1000, 32767, -32768}}
	for _, enc := range []audio.Encoding{audio.EncodingPCM16, audio.EncodingUlaw, audio.EncodingAlaw} {
		f.Add(encodeWAV(f, p, enc))
	}
	h := pcmHeader()
	h.dataSize = 0x7ffff000
	f.Add(h.bytes(s16le(p.Samples)))
	h.channels, h.align = 2, 4
	f.Add(h.bytes(s16le(p.Samples[:4])))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := audio.DecodeWAV(bytes.NewReader(in), 1<<16)
		if err != nil {
			if !errors.Is(err, audio.ErrInvalid) && !errors.Is(err, audio.ErrUnsupported) && !errors.Is(err, audio.ErrEmpty) && !errors.Is(err, audio.ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if !audio.RateSupported(got.Rate) || len(got.Samples) == 0 || len(got.Samples) > len(in) {
			t.Fatalf("decoded %d samples at %d Hz from %d bytes", len(got.Samples), got.Rate, len(in))
		}
		// Whatever decoded must survive a PCM16 round trip unchanged.
		again, err := audio.DecodeWAV(bytes.NewReader(encodeWAV(t, got, audio.EncodingPCM16)), 1<<20)
		if err != nil || !slices.Equal(again.Samples, got.Samples) || again.Rate != got.Rate {
			t.Fatalf("re-encoded audio does not round-trip: %v", err)
		}
	})
}
