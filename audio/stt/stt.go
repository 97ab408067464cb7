// Package stt turns callers' speech into text.
//
// A [Transcriber] starts a [Stream] per utterance; the caller writes 8 kHz
// PCM as it arrives, may read a partial hypothesis at any time, and closes
// the stream the moment the end-pointer fires to get the final [Result].
//
// # Backends
//
//   - [Sphinx]: pocketsphinx (Debian's 0.8+5prealpha) through cgo, the
//     embedded default. Recognition is restricted to a [Vocabulary], the
//     phrases the bot expects plus general carrier words, for which a
//     dictionary, a trigram language model and a JSGF grammar are built once
//     per vocabulary under the data dir. Decoders are kept warm in a bounded
//     pool. Built with the nopocketsphinx tag (or without cgo), NewSphinx
//     returns [ErrUnavailable].
//   - [HTTP]: any server speaking OpenAI's POST /v1/audio/transcriptions
//     (for example a whisper server).
//
// # Confidence
//
// Results carry a confidence in [0, 1]. A result below
// [DefaultMinConfidence] should be treated as "nothing understood"; speech
// outside the vocabulary comes back empty or below it.
package stt

import (
	"context"
	"errors"
	"fmt"
)

// DefaultMinConfidence is the threshold under which a [Result] should be
// treated as "nothing understood" (re-prompt the caller).
const DefaultMinConfidence = 0.5

// Errors returned by transcribers. Wrapped errors carry details; test with
// errors.Is.
var (
	// ErrUnavailable means the backend cannot run here: pocketsphinx not
	// compiled in (nopocketsphinx tag or no cgo), or its model missing.
	ErrUnavailable = errors.New("stt: speech recogniser unavailable")
	// ErrEmptyAudio means a stream was closed or a buffer transcribed
	// without any audio.
	ErrEmptyAudio = errors.New("stt: no audio")
	// ErrTooLong means more audio was written than the backend accepts for
	// one utterance (see MaxUtteranceSeconds).
	ErrTooLong = errors.New("stt: utterance too long")
	// ErrClosed means a stream or transcriber was used after Close.
	ErrClosed = errors.New("stt: closed")
	// ErrInvalidVocabulary means a Vocabulary broke a limit (empty key,
	// too many or too long phrases).
	ErrInvalidVocabulary = errVocabulary
	// ErrRemote means an HTTP backend answered with an error or an
	// unreadable body.
	ErrRemote = errors.New("stt: remote transcription failed")
)

// MaxUtteranceSeconds caps the audio of one stream.
const MaxUtteranceSeconds = 120

// sampleRate is the rate streams accept (audio.SampleRate).
const sampleRate = 8000

// maxUtteranceSamples is MaxUtteranceSeconds at 8 kHz.
const maxUtteranceSamples = MaxUtteranceSeconds * sampleRate

// Vocabulary is what a recogniser may expect to hear.
type Vocabulary struct {
	// Key identifies the phrase list and changes when it changes (for
	// example "biz1-v3"). Built models are cached per Key and content.
	Key string
	// Phrases are what users of the bot say (FAQ user-says, menu words).
	Phrases []string
	// Closed restricts recognition to Phrases alone: no carrier phrases
	// ("can you tell me", digits, yes/no) are added. A closed vocabulary
	// suits a narrow question such as a confirmation's yes or no; speech
	// outside it comes back empty or under DefaultMinConfidence.
	Closed bool
}

// Result is the final transcript of one utterance.
type Result struct {
	// Text is the transcript, lower case; "" when nothing was understood.
	Text string
	// Confidence is in [0, 1]; see DefaultMinConfidence.
	Confidence float64
	// Words is the number of words in Text.
	Words int
	// Alternatives are the recogniser's N-best hypotheses, best first,
	// with posteriors normalized to sum to 1; the first one's Text equals
	// Text. Empty when the backend gives only one string.
	Alternatives []Hypothesis
	// Lattice is the expected count of each vocabulary word over the
	// recogniser's word lattice, highest first (see [WordPosterior]). It
	// carries words that no alternative has. Empty unless the backend was
	// asked for it (SphinxConfig.Lattice) and found a lattice.
	Lattice []WordPosterior
}

// Hypothesis is one of a [Result]'s N-best alternatives.
type Hypothesis struct {
	// Text is the hypothesis, lower case.
	Text string
	// Posterior is its normalized posterior probability in [0, 1].
	Posterior float64
}

// Stream receives 8 kHz mono PCM as it arrives (any chunk size; 20 ms
// frames typical). A Stream is used by one goroutine at a time.
type Stream interface {
	// Write adds audio to the utterance.
	Write(pcm []int16) error
	// Partial returns the best hypothesis so far ("" if none).
	Partial() string
	// Close finishes the utterance and returns the final text. It
	// releases the stream's resources; later calls return ErrClosed.
	Close(ctx context.Context) (Result, error)
}

// Transcriber starts a stream per utterance. Implementations are safe for
// concurrent use.
type Transcriber interface {
	// Start begins an utterance restricted (where the backend supports it)
	// to v. It may block until a decoder is free, honouring ctx.
	Start(ctx context.Context, v Vocabulary) (Stream, error)
}

// Transcribe transcribes one buffer of 8 kHz audio with t.
func Transcribe(ctx context.Context, t Transcriber, v Vocabulary, pcm []int16) (Result, error) {
	if len(pcm) == 0 {
		return Result{}, ErrEmptyAudio
	}
	if len(pcm) > maxUtteranceSamples {
		return Result{}, fmt.Errorf("%w: %d samples", ErrTooLong, len(pcm))
	}
	s, err := t.Start(ctx, v)
	if err != nil {
		return Result{}, err
	}
	const chunk = 160 * 25 // half a second
	for len(pcm) > 0 {
		n := min(chunk, len(pcm))
		if err := s.Write(pcm[:n]); err != nil {
			_, _ = s.Close(context.WithoutCancel(ctx))
			return Result{}, err
		}
		pcm = pcm[n:]
	}
	return s.Close(ctx)
}
