// Package audio is koel's signal layer: 8 kHz mono PCM frames, G.711 mu-law
// and A-law, WAV and MP3 decoding, WAV encoding, a windowed-sinc polyphase
// resampler, an energy voice-activity detector and the end-pointer that
// decides when a caller's message is over.
//
// # Time
//
// Everything here counts time in samples, never with the wall clock: the
// same audio always produces the same decision. A frame is [FrameSamples]
// samples at [SampleRate] Hz ([FrameDuration]).
//
// # Bad input
//
// Decoders read at most a caller-supplied number of bytes and return an
// error wrapping [ErrInvalid], [ErrUnsupported], [ErrTooLarge] or [ErrEmpty]
// for anything they cannot use; they never panic and never return part of a
// broken file.
package audio
