package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Encoding is the sample encoding of WAV data. The zero value is
// [EncodingPCM16].
type Encoding int

// Encodings of WAV data.
const (
	// EncodingPCM16 is linear 16-bit little-endian PCM (WAVE_FORMAT_PCM).
	EncodingPCM16 Encoding = iota
	// EncodingUlaw is 8-bit G.711 mu-law (WAVE_FORMAT_MULAW).
	EncodingUlaw
	// EncodingAlaw is 8-bit G.711 A-law (WAVE_FORMAT_ALAW).
	EncodingAlaw
)

// String returns "pcm16", "ulaw", "alaw" or "encoding(N)".
func (e Encoding) String() string {
	switch e {
	case EncodingPCM16:
		return "pcm16"
	case EncodingUlaw:
		return "ulaw"
	case EncodingAlaw:
		return "alaw"
	}
	return fmt.Sprintf("encoding(%d)", int(e))
}

// WAVE format tags (RFC 2361).
const (
	wavFormatPCM        = 0x0001
	wavFormatAlaw       = 0x0006
	wavFormatUlaw       = 0x0007
	wavFormatExtensible = 0xFFFE
)

const (
	maxWAVChannels = 8
	maxFmtChunk    = 1024
	// dataSizeUnknown is the data size streaming writers (espeak-ng among
	// them) put in the header when they cannot seek back.
	dataSizeUnknown = 0xFFFFFFFF
)

// wavFormat is the parsed fmt chunk.
type wavFormat struct {
	enc      Encoding
	channels int
	rate     int
}

func (f wavFormat) blockAlign() int {
	if f.enc == EncodingPCM16 {
		return 2 * f.channels
	}
	return f.channels
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// DecodeWAV reads a RIFF/WAVE file from r and returns its audio as mono PCM at
// the file's own rate (see [Resample]). It accepts 16-bit linear PCM, mu-law
// and A-law, 1 to 8 channels (downmixed by averaging) and the rates
// [RateSupported] accepts. Unknown chunks are skipped.
//
// A data size that is zero, 0xFFFFFFFF or larger than the stream (espeak-ng
// writes such sizes when it streams to stdout) means "read to EOF"; a
// trailing partial sample is dropped.
//
// DecodeWAV reads at most maxBytes bytes of r: a longer input gives an error
// wrapping [ErrTooLarge]. A malformed file gives [ErrInvalid], an encoding,
// channel count or rate it does not handle gives [ErrUnsupported], and a
// file without samples gives [ErrEmpty].
func DecodeWAV(r io.Reader, maxBytes int64) (PCM, error) {
	if maxBytes <= 0 {
		return PCM{}, fmt.Errorf("%w: wav: non-positive size cap %d", ErrInvalid, maxBytes)
	}
	cr := &countingReader{r: io.LimitReader(r, maxBytes+1)}
	p, err := decodeWAV(cr)
	if cr.n > maxBytes {
		return PCM{}, fmt.Errorf("%w: wav: more than %d bytes", ErrTooLarge, maxBytes)
	}
	if err != nil {
		return PCM{}, err
	}
	return p, nil
}

func decodeWAV(r io.Reader) (PCM, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return PCM{}, fmt.Errorf("%w: wav: riff header: %w", ErrInvalid, noEOF(err))
	}
	switch string(hdr[0:4]) {
	case "RIFF":
	case "RF64", "RIFX":
		return PCM{}, fmt.Errorf("%w: wav: %q container", ErrUnsupported, hdr[0:4])
	default:
		return PCM{}, fmt.Errorf("%w: wav: not a RIFF file", ErrInvalid)
	}
	if string(hdr[8:12]) != "WAVE" {
		return PCM{}, fmt.Errorf("%w: wav: RIFF form %q is not WAVE", ErrInvalid, hdr[8:12])
	}
	var (
		format  wavFormat
		haveFmt bool
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return PCM{}, fmt.Errorf("%w: wav: no data chunk", ErrInvalid)
			}
			return PCM{}, fmt.Errorf("%w: wav: chunk header: %w", ErrInvalid, noEOF(err))
		}
		id := string(ch[0:4])
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if haveFmt {
				return PCM{}, fmt.Errorf("%w: wav: second fmt chunk", ErrInvalid)
			}
			f, err := readFmt(r, size)
			if err != nil {
				return PCM{}, err
			}
			format, haveFmt = f, true
		case "data":
			if !haveFmt {
				return PCM{}, fmt.Errorf("%w: wav: data chunk before fmt chunk", ErrInvalid)
			}
			return readData(r, size, format)
		default:
			skip := int64(size) + int64(size&1)
			if n, err := io.CopyN(io.Discard, r, skip); err != nil {
				return PCM{}, fmt.Errorf("%w: wav: chunk %q truncated at %d of %d bytes", ErrInvalid, sanitizeID(ch[0:4]), n, skip)
			}
		}
	}
}

func readFmt(r io.Reader, size uint32) (wavFormat, error) {
	if size < 16 || size > maxFmtChunk {
		return wavFormat{}, fmt.Errorf("%w: wav: fmt chunk of %d bytes", ErrInvalid, size)
	}
	buf := make([]byte, size+size&1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return wavFormat{}, fmt.Errorf("%w: wav: fmt chunk: %w", ErrInvalid, noEOF(err))
	}
	tag := binary.LittleEndian.Uint16(buf[0:2])
	channels := int(binary.LittleEndian.Uint16(buf[2:4]))
	rate := binary.LittleEndian.Uint32(buf[4:8])
	align := int(binary.LittleEndian.Uint16(buf[12:14]))
	bits := int(binary.LittleEndian.Uint16(buf[14:16]))
	if tag == wavFormatExtensible {
		// WAVE_FORMAT_EXTENSIBLE: cbSize(2) validBits(2) mask(4) GUID(16);
		// the GUID's first two bytes are the real format tag.
		if size < 40 {
			return wavFormat{}, fmt.Errorf("%w: wav: extensible fmt chunk of %d bytes", ErrInvalid, size)
		}
		tag = binary.LittleEndian.Uint16(buf[24:26])
	}
	var f wavFormat
	switch tag {
	case wavFormatPCM:
		if bits != 16 {
			return wavFormat{}, fmt.Errorf("%w: wav: %d-bit linear PCM", ErrUnsupported, bits)
		}
		f.enc = EncodingPCM16
	case wavFormatUlaw, wavFormatAlaw:
		if bits != 8 {
			return wavFormat{}, fmt.Errorf("%w: wav: G.711 with %d bits per sample", ErrInvalid, bits)
		}
		f.enc = EncodingUlaw
		if tag == wavFormatAlaw {
			f.enc = EncodingAlaw
		}
	default:
		return wavFormat{}, fmt.Errorf("%w: wav: format tag 0x%04x", ErrUnsupported, tag)
	}
	switch {
	case channels == 0:
		return wavFormat{}, fmt.Errorf("%w: wav: zero channels", ErrInvalid)
	case channels > maxWAVChannels:
		return wavFormat{}, fmt.Errorf("%w: wav: %d channels", ErrUnsupported, channels)
	}
	f.channels = channels
	if rate > 1<<20 || !RateSupported(int(rate)) {
		return wavFormat{}, fmt.Errorf("%w: wav: sample rate %d Hz", ErrUnsupported, rate)
	}
	f.rate = int(rate)
	if align != f.blockAlign() {
		return wavFormat{}, fmt.Errorf("%w: wav: block align %d, want %d", ErrInvalid, align, f.blockAlign())
	}
	return f, nil
}

func readData(r io.Reader, size uint32, f wavFormat) (PCM, error) {
	src := r
	if size != 0 && size != dataSizeUnknown {
		src = io.LimitReader(r, int64(size))
	}
	// io.ReadAll grows with what actually arrives, so a hostile size field
	// cannot make us allocate more than the stream (itself capped) holds.
	data, err := io.ReadAll(src)
	if err != nil {
		return PCM{}, fmt.Errorf("%w: wav: data: %w", ErrInvalid, err)
	}
	align := f.blockAlign()
	frames := len(data) / align
	if frames == 0 {
		return PCM{}, fmt.Errorf("%w: wav: empty data chunk", ErrEmpty)
	}
	out := make([]int16, frames)
	ch := f.channels
	for i := range out {
		blk := data[i*align : (i+1)*align]
		var sum int32
		for c := range ch {
			switch f.enc {
			case EncodingPCM16:
				sum += int32(int16(binary.LittleEndian.Uint16(blk[2*c:])))
			case EncodingUlaw:
				sum += int32(ulawSample(blk[c]))
			case EncodingAlaw:
				sum += int32(alawSample(blk[c]))
			}
		}
		out[i] = int16(sum / int32(ch))
	}
	return PCM{Rate: f.rate, Samples: out}, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: inside a header, the end of
// the stream is always a truncation.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// sanitizeID renders a chunk id for an error message without control bytes.
func sanitizeID(id []byte) string {
	b := make([]byte, len(id))
	for i, c := range id {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b[i] = c
	}
	return string(b)
}

// maxWAVData is the largest data chunk a RIFF size field can describe with
// room for the headers.
const maxWAVData = 0xFFFFFFFF - 64

// EncodeWAV writes p to w as a RIFF/WAVE file in encoding enc. p.Rate must
// be one [RateSupported] accepts. mu-law and A-law files carry the fact
// chunk that non-PCM WAVE files require.
func EncodeWAV(w io.Writer, p PCM, enc Encoding) error {
	if !RateSupported(p.Rate) {
		return fmt.Errorf("%w: wav: sample rate %d Hz", ErrUnsupported, p.Rate)
	}
	var (
		tag       uint16
		bits      uint16
		bytesPer  int
		fmtSize   uint32 = 16
		factChunk bool
	)
	switch enc {
	case EncodingPCM16:
		tag, bits, bytesPer = wavFormatPCM, 16, 2
	case EncodingUlaw:
		tag, bits, bytesPer, fmtSize, factChunk = wavFormatUlaw, 8, 1, 18, true
	case EncodingAlaw:
		tag, bits, bytesPer, fmtSize, factChunk = wavFormatAlaw, 8, 1, 18, true
	default:
		return fmt.Errorf("%w: wav: encoding %v", ErrUnsupported, enc)
	}
	n := len(p.Samples)
	dataSize := int64(n) * int64(bytesPer)
	if dataSize > maxWAVData {
		return fmt.Errorf("%w: wav: %d samples do not fit a RIFF file", ErrTooLarge, n)
	}
	pad := dataSize & 1
	riffSize := 4 + 8 + int64(fmtSize) + 8 + dataSize + pad
	if factChunk {
		riffSize += 12
	}
	hdr := make([]byte, 0, 64)
	le := binary.LittleEndian
	hdr = append(hdr, "RIFF"...)
	hdr = le.AppendUint32(hdr, uint32(riffSize))
	hdr = append(hdr, "WAVEfmt "...)
	hdr = le.AppendUint32(hdr, fmtSize)
	hdr = le.AppendUint16(hdr, tag)
	hdr = le.AppendUint16(hdr, 1)
	hdr = le.AppendUint32(hdr, uint32(p.Rate))
	hdr = le.AppendUint32(hdr, uint32(p.Rate*bytesPer))
	hdr = le.AppendUint16(hdr, uint16(bytesPer))
	hdr = le.AppendUint16(hdr, bits)
	if fmtSize == 18 {
		hdr = le.AppendUint16(hdr, 0) // cbSize
	}
	if factChunk {
		hdr = append(hdr, "fact"...)
		hdr = le.AppendUint32(hdr, 4)
		hdr = le.AppendUint32(hdr, uint32(n))
	}
	hdr = append(hdr, "data"...)
	hdr = le.AppendUint32(hdr, uint32(dataSize))
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("audio: write wav header: %w", err)
	}
	var buf [4096]byte
	for s := p.Samples; len(s) > 0; {
		var m, used int
		switch enc {
		case EncodingPCM16:
			used = min(len(s), len(buf)/2)
			for i, v := range s[:used] {
				le.PutUint16(buf[2*i:], uint16(v))
			}
			m = 2 * used
		case EncodingUlaw:
			used = EncodeUlaw(buf[:], s)
			m = used
		case EncodingAlaw:
			used = EncodeAlaw(buf[:], s)
			m = used
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return fmt.Errorf("audio: write wav data: %w", err)
		}
		s = s[used:]
	}
	if pad == 1 {
		if _, err := w.Write([]byte{0}); err != nil {
			return fmt.Errorf("audio: write wav padding: %w", err)
		}
	}
	return nil
}
