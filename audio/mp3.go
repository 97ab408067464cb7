package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	mp3 "github.com/hajimehoshi/go-mp3"
)

// id3v2HeaderSize is the size of an ID3v2 tag header (and footer).
const id3v2HeaderSize = 10

// DecodeMP3 reads an MPEG-1 or MPEG-2 Layer III stream from r (ID3v2 tags
// are skipped) and returns it as mono PCM at the stream's rate. It reads at
// most maxBytes bytes of r ([ErrTooLarge] beyond). An input that is not MP3
// or has a corrupt frame gives [ErrInvalid]; an MPEG-2.5 or free-format
// stream gives [ErrUnsupported] or [ErrInvalid]; an empty input gives
// [ErrEmpty].
//
// The decoded audio takes at most 48 bytes per input byte (the expansion of
// the lowest MP3 bitrate), so memory stays proportional to maxBytes.
func DecodeMP3(r io.Reader, maxBytes int64) (PCM, error) {
	data, err := readCapped(r, maxBytes, "mp3")
	if err != nil {
		return PCM{}, err
	}
	if len(data) == 0 {
		return PCM{}, fmt.Errorf("%w: mp3: empty input", ErrEmpty)
	}
	data, err = skipID3v2(data)
	if err != nil {
		return PCM{}, err
	}
	if !isMPEGSync(data) {
		return PCM{}, fmt.Errorf("%w: mp3: no frame sync at start of stream", ErrInvalid)
	}
	return decodeMP3Frames(data)
}

// readCapped reads all of r, failing with ErrTooLarge beyond maxBytes.
func readCapped(r io.Reader, maxBytes int64, what string) ([]byte, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("%w: %s: non-positive size cap %d", ErrInvalid, what, maxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("audio: read %s: %w", what, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrTooLarge, what, maxBytes)
	}
	return data, nil
}

// isMPEGSync reports whether b starts with an MPEG audio frame sync (11 set
// bits).
func isMPEGSync(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xFF && b[1]&0xE0 == 0xE0
}

// skipID3v2 strips leading ID3v2 tags. The decoder library would allocate
// whatever the tag's size field says; checking it against the input here
// keeps memory bounded by the input.
func skipID3v2(b []byte) ([]byte, error) {
	for len(b) >= 3 && string(b[:3]) == "ID3" {
		if len(b) < id3v2HeaderSize {
			return nil, fmt.Errorf("%w: mp3: truncated ID3v2 header", ErrInvalid)
		}
		sz := b[6:10]
		for _, c := range sz {
			if c&0x80 != 0 {
				return nil, fmt.Errorf("%w: mp3: ID3v2 size is not syncsafe", ErrInvalid)
			}
		}
		size := int(sz[0])<<21 | int(sz[1])<<14 | int(sz[2])<<7 | int(sz[3])
		total := id3v2HeaderSize + size
		if b[5]&0x10 != 0 { // footer present
			total += id3v2HeaderSize
		}
		if total > len(b) {
			return nil, fmt.Errorf("%w: mp3: ID3v2 tag of %d bytes in %d-byte input", ErrInvalid, total, len(b))
		}
		b = b[total:]
	}
	return b, nil
}

// decodeMP3Frames runs the decoder library over data, downmixing as it
// goes. The library has panicked on hostile input in the past; a panic is
// turned into ErrInvalid so a bad upload cannot take the server down.
func decodeMP3Frames(data []byte) (p PCM, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = PCM{}, fmt.Errorf("%w: mp3: corrupt stream (decoder panic: %v)", ErrInvalid, v)
		}
	}()
	// Hide Seek so the library does not pre-scan the whole stream.
	dec, err := mp3.NewDecoder(struct{ io.Reader }{bytes.NewReader(data)})
	if err != nil {
		if errors.Is(err, io.EOF) {
			return PCM{}, fmt.Errorf("%w: mp3: no complete frame", ErrInvalid)
		}
		return PCM{}, mp3Error(err)
	}
	rate := dec.SampleRate()
	if !RateSupported(rate) {
		return PCM{}, fmt.Errorf("%w: mp3: sample rate %d Hz", ErrUnsupported, rate)
	}
	// The library always produces interleaved stereo int16 (4 bytes a sample).
	out := make([]int16, 0, min(len(data)*12, 1<<20))
	buf := make([]byte, 4608)
	carry := 0
	for {
		n, rerr := dec.Read(buf[carry:])
		n += carry
		whole := n &^ 3
		for i := 0; i < whole; i += 4 {
			l := int32(int16(binary.LittleEndian.Uint16(buf[i:])))
			r := int32(int16(binary.LittleEndian.Uint16(buf[i+2:])))
			out = append(out, int16((l+r)/2))
		}
		carry = copy(buf, buf[whole:n])
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			return PCM{}, mp3Error(rerr)
		}
	}
	if len(out) == 0 {
		return PCM{}, fmt.Errorf("%w: mp3: no samples decoded", ErrEmpty)
	}
	return PCM{Rate: rate, Samples: out}, nil
}

func mp3Error(err error) error {
	return fmt.Errorf("%w: mp3: %w", ErrInvalid, err)
}
