package audio

import (
	"slices"
	"time"
)

// Telephony constants: koel's internal audio is 8 kHz mono 16-bit PCM cut
// into 20 ms frames.
const (
	// SampleRate is the telephony sample rate in Hz.
	SampleRate = 8000
	// FrameSamples is the number of samples in one 20 ms frame at SampleRate.
	FrameSamples = 160
	// FrameDuration is the duration of one frame.
	FrameDuration = 20 * time.Millisecond
)

// supportedRates lists the sample rates, in Hz, that the decoders accept and
// the resampler converts between.
var supportedRates = [...]int{8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000}

// RateSupported reports whether the decoders, the WAV encoder and the
// resampler handle rate Hz: 8000, 11025, 16000, 22050, 24000, 32000,
// 44100 or 48000.
func RateSupported(rate int) bool {
	return slices.Contains(supportedRates[:], rate)
}

// PCM is mono 16-bit audio at Rate Hz.
type PCM struct {
	// Rate is the sample rate in Hz.
	Rate int
	// Samples holds signed 16-bit samples.
	Samples []int16
}

// Duration returns the length of p, rounded down to the nanosecond. It is 0
// when Rate is not positive.
func (p PCM) Duration() time.Duration {
	return SamplesToDuration(len(p.Samples), p.Rate)
}

// SamplesToDuration converts a sample count at rate Hz to a duration,
// rounded down to the nanosecond. It returns 0 for a non-positive rate.
func SamplesToDuration(n, rate int) time.Duration {
	if rate <= 0 || n <= 0 {
		return 0
	}
	sec := int64(n) / int64(rate)
	rem := int64(n) % int64(rate)
	return time.Duration(sec)*time.Second + time.Duration(rem*int64(time.Second)/int64(rate))
}

// DurationToSamples converts d to a sample count at rate Hz, rounding up so
// that a duration shorter than one sample still counts as one. It returns 0
// for a non-positive d or rate.
func DurationToSamples(d time.Duration, rate int) int {
	if d <= 0 || rate <= 0 {
		return 0
	}
	sec := int64(d / time.Second)
	rem := int64(d % time.Second)
	return int(sec*int64(rate) + (rem*int64(rate)+int64(time.Second)-1)/int64(time.Second))
}
