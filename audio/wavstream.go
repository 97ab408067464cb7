package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WAVReader decodes a RIFF/WAVE stream as it arrives: the header is read by
// [NewWAVReader], then each [WAVReader.ReadPCM] reads only the bytes it
// needs, downmixes and resamples them to the output rate. Memory stays a
// few kilobytes whatever the recording's length, where [DecodeWAV] holds
// the whole file and its samples. It accepts what DecodeWAV accepts.
type WAVReader struct {
	cr       *countingReader
	src      io.Reader // the data chunk
	f        wavFormat
	maxBytes int64
	res      *Resampler
	raw      []byte
	mono     []int16
	out      []int16 // resampled samples not yet returned (within outBuf)
	outBuf   []int16
	frames   int64 // input frames read
	done     bool
	flushed  bool
}

// wavReadFrames is how many input frames one read decodes.
const wavReadFrames = 4096

// NewWAVReader reads the WAV header from r (at most maxBytes bytes of r are
// ever read) and returns a reader of its samples as mono PCM at rate.
// Errors wrap the sentinels DecodeWAV uses.
func NewWAVReader(r io.Reader, maxBytes int64, rate int) (*WAVReader, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("%w: wav: non-positive size cap %d", ErrInvalid, maxBytes)
	}
	cr := &countingReader{r: io.LimitReader(r, maxBytes+1)}
	f, size, err := readWAVHeader(cr)
	if err != nil {
		return nil, err
	}
	res, err := NewResampler(f.rate, rate)
	if err != nil {
		return nil, err
	}
	w := &WAVReader{cr: cr, src: cr, f: f, maxBytes: maxBytes, res: res,
		raw: make([]byte, wavReadFrames*f.blockAlign()), mono: make([]int16, wavReadFrames)}
	if size != 0 && size != dataSizeUnknown {
		w.src = io.LimitReader(cr, int64(size))
	}
	return w, nil
}

// SourceRate is the file's own sample rate.
func (w *WAVReader) SourceRate() int { return w.f.rate }

// ReadPCM fills p with output samples and returns how many. It returns
// io.EOF after the last sample, an error wrapping [ErrEmpty] when the data
// chunk held no sample, [ErrTooLarge] past the size cap and [ErrInvalid]
// when the stream breaks off.
func (w *WAVReader) ReadPCM(p []int16) (int, error) {
	for len(w.out) == 0 {
		if w.flushed {
			return 0, io.EOF
		}
		if w.done {
			w.outBuf = w.res.Flush(w.outBuf[:0])
			w.out = w.outBuf
			w.flushed = true
			continue
		}
		if err := w.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}

// fill decodes the next block of input into w.out.
func (w *WAVReader) fill() error {
	align := w.f.blockAlign()
	n, err := io.ReadFull(w.src, w.raw)
	if w.cr.n > w.maxBytes {
		return fmt.Errorf("%w: wav: more than %d bytes", ErrTooLarge, w.maxBytes)
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		w.done = true
	case err != nil:
		return fmt.Errorf("%w: wav: data: %w", ErrInvalid, err)
	}
	frames := n / align // a trailing partial sample is dropped
	if frames == 0 && w.done && w.frames == 0 {
		return fmt.Errorf("%w: wav: empty data chunk", ErrEmpty)
	}
	mono := w.mono[:frames]
	ch := w.f.channels
	for i := range mono {
		blk := w.raw[i*align : (i+1)*align]
		var sum int32
		for c := range ch {
			switch w.f.enc {
			case EncodingPCM16:
				sum += int32(int16(binary.LittleEndian.Uint16(blk[2*c:])))
			case EncodingUlaw:
				sum += int32(ulawSample(blk[c]))
			case EncodingAlaw:
				sum += int32(alawSample(blk[c]))
			}
		}
		mono[i] = int16(sum / int32(ch))
	}
	w.frames += int64(frames)
	w.outBuf = w.res.Process(w.outBuf[:0], mono)
	w.out = w.outBuf
	return nil
}

// readWAVHeader reads a WAV file up to the start of its data chunk and
// returns the format and the data chunk's declared size.
func readWAVHeader(r io.Reader) (wavFormat, uint32, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return wavFormat{}, 0, fmt.Errorf("%w: wav: riff header: %w", ErrInvalid, noEOF(err))
	}
	switch string(hdr[0:4]) {
	case "RIFF":
	case "RF64", "RIFX":
		return wavFormat{}, 0, fmt.Errorf("%w: wav: %q container", ErrUnsupported, hdr[0:4])
	default:
		return wavFormat{}, 0, fmt.Errorf("%w: wav: not a RIFF file", ErrInvalid)
	}
	if string(hdr[8:12]) != "WAVE" {
		return wavFormat{}, 0, fmt.Errorf("%w: wav: RIFF form %q is not WAVE", ErrInvalid, hdr[8:12])
	}
	var (
		format  wavFormat
		haveFmt bool
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return wavFormat{}, 0, fmt.Errorf("%w: wav: no data chunk", ErrInvalid)
			}
			return wavFormat{}, 0, fmt.Errorf("%w: wav: chunk header: %w", ErrInvalid, noEOF(err))
		}
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch string(ch[0:4]) {
		case "fmt ":
			if haveFmt {
				return wavFormat{}, 0, fmt.Errorf("%w: wav: second fmt chunk", ErrInvalid)
			}
			f, err := readFmt(r, size)
			if err != nil {
				return wavFormat{}, 0, err
			}
			format, haveFmt = f, true
		case "data":
			if !haveFmt {
				return wavFormat{}, 0, fmt.Errorf("%w: wav: data chunk before fmt chunk", ErrInvalid)
			}
			return format, size, nil
		default:
			skip := int64(size) + int64(size&1)
			if n, err := io.CopyN(io.Discard, r, skip); err != nil {
				return wavFormat{}, 0, fmt.Errorf("%w: wav: chunk %q truncated at %d of %d bytes", ErrInvalid, sanitizeID(ch[0:4]), n, skip)
			}
		}
	}
}
