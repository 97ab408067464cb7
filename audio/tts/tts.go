// Package tts turns the bot's replies into speech for the caller.
//
// A [Synthesizer] returns 8 kHz mono PCM ([audio.SampleRate]). Backends:
//
//   - [Espeak]: the espeak-ng program (the embedded default), one process
//     per sentence, text on stdin, resampled to 8 kHz.
//   - [HTTP]: any server speaking OpenAI's POST /v1/audio/speech.
//
// [Cache] wraps any Synthesizer with an in-memory LRU and an optional
// on-disk store keyed by text, voice and rate, so prompts are rendered once.
package tts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/koelvoice/koel/audio"
)

// Errors returned by synthesizers. Wrapped errors carry details; test with
// errors.Is.
var (
	// ErrUnavailable means the backend cannot run here (espeak-ng not
	// installed, or the remote server unreachable).
	ErrUnavailable = errors.New("tts: synthesizer unavailable")
	// ErrEmptyText means there was nothing to say.
	ErrEmptyText = errors.New("tts: empty text")
	// ErrTextTooLong means the text is longer than the backend's limit.
	ErrTextTooLong = errors.New("tts: text too long")
	// ErrInvalidText means the text is not valid UTF-8 or holds control
	// characters other than white space.
	ErrInvalidText = errors.New("tts: invalid text")
	// ErrInvalidVoice means a voice name or rate was rejected.
	ErrInvalidVoice = errors.New("tts: invalid voice")
	// ErrRemote means an HTTP backend answered with an error or unusable
	// audio.
	ErrRemote = errors.New("tts: remote synthesis failed")
)

// DefaultMaxTextBytes is the default text limit of the backends.
const DefaultMaxTextBytes = 4096

// Voice selects how text is spoken.
type Voice struct {
	// Name is the backend's voice ("en-us" for espeak-ng, "alloy" for an
	// OpenAI server); "" is the backend's default.
	Name string
	// Rate is the speaking rate in words per minute; 0 is the default.
	Rate int
}

// Synthesizer renders text as 8 kHz mono speech. Implementations are safe
// for concurrent use and honour ctx.
type Synthesizer interface {
	Synthesize(ctx context.Context, text string, v Voice) (audio.PCM, error)
}

// Rate limits (words per minute) accepted by every backend.
const (
	MinRate = 80
	MaxRate = 450
)

// checkText validates text against limit and returns it trimmed.
func checkText(text string, limit int) (string, error) {
	if len(text) > limit {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrTextTooLong, len(text), limit)
	}
	if !utf8.ValidString(text) {
		return "", fmt.Errorf("%w: not UTF-8", ErrInvalidText)
	}
	for _, r := range text {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' || r == 0x7f {
			return "", fmt.Errorf("%w: control character %U", ErrInvalidText, r)
		}
	}
	t := strings.TrimSpace(text)
	if t == "" {
		return "", ErrEmptyText
	}
	return t, nil
}

// checkVoice validates a voice: names are short and made of letters,
// digits and "-+_." (never an option such as "--help"); rates are 0 or in
// [MinRate, MaxRate].
func checkVoice(v Voice) error {
	if len(v.Name) > 64 {
		return fmt.Errorf("%w: name longer than 64 bytes", ErrInvalidVoice)
	}
	for i, r := range v.Name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' ||
			(r == '-' || r == '+') && i > 0
		if !ok {
			return fmt.Errorf("%w: name %q", ErrInvalidVoice, v.Name)
		}
	}
	if v.Rate != 0 && (v.Rate < MinRate || v.Rate > MaxRate) {
		return fmt.Errorf("%w: rate %d outside %d..%d", ErrInvalidVoice, v.Rate, MinRate, MaxRate)
	}
	return nil
}

// to8k converts synthesized audio to the telephone rate.
func to8k(p audio.PCM) (audio.PCM, error) {
	if p.Rate == audio.SampleRate {
		return p, nil
	}
	out, err := audio.Resample(p, audio.SampleRate)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("tts: resample: %w", err)
	}
	return out, nil
}
