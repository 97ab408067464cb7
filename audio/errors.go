package audio

import "errors"

// Sentinel errors. Functions wrap them with detail; test with [errors.Is].
var (
	// ErrUnsupported reports a well-formed input the package cannot handle:
	// an unknown container, an encoding other than PCM16, mu-law or A-law,
	// a sample rate [RateSupported] rejects, or a resampling ratio that is
	// too complex.
	ErrUnsupported = errors.New("audio: unsupported format")
	// ErrTooLarge reports input beyond the caller's size cap or a recording
	// beyond its duration cap.
	ErrTooLarge = errors.New("audio: input too large")
	// ErrInvalid reports malformed input (a truncated or inconsistent
	// header, a corrupt MP3 frame) or an invalid argument or configuration.
	ErrInvalid = errors.New("audio: invalid input")
	// ErrEmpty reports a well-formed file that holds no samples.
	ErrEmpty = errors.New("audio: no samples")
)
