package audio

import (
	"fmt"
	"io"
	"time"
)

// MaxRecording is the hard cap on a [Recorder]'s length.
const MaxRecording = time.Hour

// Recorder accumulates 8 kHz frames up to a duration cap, for writing the
// caller's message as a WAV file. It is not safe for concurrent use.
type Recorder struct {
	max     int // samples
	samples []int16
}

// NewRecorder returns a Recorder that keeps at most maxDuration of audio
// (rounded up to a whole sample). A non-positive maxDuration, or one beyond
// [MaxRecording], means MaxRecording.
func NewRecorder(maxDuration time.Duration) *Recorder {
	if maxDuration <= 0 || maxDuration > MaxRecording {
		maxDuration = MaxRecording
	}
	return &Recorder{max: DurationToSamples(maxDuration, SampleRate)}
}

// Write appends frame (8 kHz samples, any length). When the cap is reached
// it keeps the samples that fit and returns an error wrapping [ErrTooLarge].
func (r *Recorder) Write(frame []int16) error {
	room := r.max - len(r.samples)
	if len(frame) > room {
		r.samples = append(r.samples, frame[:room]...)
		return fmt.Errorf("%w: recording reached its %v cap", ErrTooLarge, SamplesToDuration(r.max, SampleRate))
	}
	r.samples = append(r.samples, frame...)
	return nil
}

// Duration returns the length recorded so far.
func (r *Recorder) Duration() time.Duration {
	return SamplesToDuration(len(r.samples), SampleRate)
}

// Truncate drops everything after d (rounded up to a whole sample); the
// end-pointer's [EndResult.End] is a natural argument. Truncating beyond the
// current length does nothing.
func (r *Recorder) Truncate(d time.Duration) {
	n := DurationToSamples(d, SampleRate)
	if n < len(r.samples) {
		r.samples = r.samples[:n]
	}
}

// PCM returns the recording so far at [SampleRate]. The samples are shared
// with the Recorder but later writes never change them.
func (r *Recorder) PCM() PCM {
	n := len(r.samples)
	return PCM{Rate: SampleRate, Samples: r.samples[:n:n]}
}

// WriteWAV writes the recording so far to w as a WAV file in encoding enc.
func (r *Recorder) WriteWAV(w io.Writer, enc Encoding) error {
	return EncodeWAV(w, r.PCM(), enc)
}
