package audio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Decode sniffs r and decodes it as WAV ([DecodeWAV]) or MP3
// ([DecodeMP3]), reading at most maxBytes bytes. Anything else gives an error
// wrapping [ErrUnsupported]; an empty input gives [ErrEmpty].
func Decode(r io.Reader, maxBytes int64) (PCM, error) {
	if maxBytes <= 0 {
		return PCM{}, fmt.Errorf("%w: non-positive size cap %d", ErrInvalid, maxBytes)
	}
	br := bufio.NewReaderSize(r, 64)
	head, err := br.Peek(4)
	switch {
	case len(head) == 0 && errors.Is(err, io.EOF):
		return PCM{}, fmt.Errorf("%w: empty input", ErrEmpty)
	case err != nil && !errors.Is(err, io.EOF):
		return PCM{}, fmt.Errorf("audio: read: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, []byte("RIFF")), bytes.HasPrefix(head, []byte("RF64")), bytes.HasPrefix(head, []byte("RIFX")):
		return DecodeWAV(br, maxBytes)
	case bytes.HasPrefix(head, []byte("ID3")), isMPEGSync(head):
		return DecodeMP3(br, maxBytes)
	}
	return PCM{}, fmt.Errorf("%w: unrecognized container (starts %q)", ErrUnsupported, sanitizeID(head))
}
