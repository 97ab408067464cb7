package audio

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"
)

// TestWAVReaderMatchesDecode streams WAV files of every accepted encoding,
// channel count and rate and compares the samples with DecodeWAV followed by
// Resample.
func TestWAVReaderMatchesDecode(t *testing.T) {
	src := make([]int16, 12345)
	for i := range src {
		src[i] = int16(8000 * math.Sin(float64(i)*0.03))
	}
	for _, tt := range []struct {
		name string
		enc  Encoding
		rate int
	}{{"pcm16 8k", EncodingPCM16, 8000}, {"ulaw 8k", EncodingUlaw, 8000}, {"alaw 8k", EncodingAlaw, 8000}, {"pcm16 16k", EncodingPCM16, 16000}, {"pcm16 44.1k", EncodingPCM16, 44100}} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := EncodeWAV(&b, PCM{Rate: tt.rate, Samples: src}, tt.enc); err != nil {
				t.Fatal(err)
			}
			want, err := DecodeWAV(bytes.NewReader(b.Bytes()), 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if want, err = Resample(want, SampleRate); err != nil {
				t.Fatal(err)
			}
			r, err := NewWAVReader(bytes.NewReader(b.Bytes()), 1<<30, SampleRate)
			if err != nil {
				t.Fatal(err)
			}
			var got []int16
			buf := make([]int16, 777)
			for {
				n, err := r.ReadPCM(buf)
				got = append(got, buf[:n]...)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != len(want.Samples) {
				t.Fatalf("streamed %d samples, DecodeWAV+Resample gave %d", len(got), len(want.Samples))
			}
			for i := range got {
				if d := int(got[i]) - int(want.Samples[i]); d > 1 || d < -1 {
					t.Fatalf("sample %d: streamed %d, decoded %d", i, got[i], want.Samples[i])
				}
			}
		})
	}
}

func TestWAVReaderErrors(t *testing.T) {
	var b bytes.Buffer
	if err := EncodeWAV(&b, PCM{Rate: 8000, Samples: make([]int16, 8000)}, EncodingPCM16); err != nil {
		t.Fatal(err)
	}
	full := b.Bytes()
	readAll := func(r *WAVReader) error {
		buf := make([]int16, 1000)
		for {
			_, err := r.ReadPCM(buf)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if _, err := NewWAVReader(bytes.NewReader([]byte("RIFF\x00\x00")), 1<<20, 8000); !errors.Is(err, ErrInvalid) {
		t.Errorf("truncated header: %v", err)
	}
	if _, err := NewWAVReader(bytes.NewReader([]byte("not a wav file at all")), 1<<20, 8000); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: %v", err)
	}
	r, err := NewWAVReader(bytes.NewReader(full), 4000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if err := readAll(r); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
	var e bytes.Buffer
	_ = EncodeWAV(&e, PCM{Rate: 8000, Samples: []int16{1}}, EncodingPCM16)
	empty := e.Bytes()[:len(e.Bytes())-2]
	r, err = NewWAVReader(bytes.NewReader(empty), 1<<20, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if err := readAll(r); !errors.Is(err, ErrEmpty) {
		t.Errorf("no samples: %v", err)
	}
}
