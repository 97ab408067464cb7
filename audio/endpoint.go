package audio

import (
	"fmt"
	"strings"
	"time"
)

// EndReason says why a recording ended.
type EndReason string

// End reasons, as KooKoo and koel's turn records spell them.
const (
	// EndSilence: the caller spoke, then paused for the silence period.
	EndSilence EndReason = "silence"
	// EndMaxDuration: the recording reached its maximum length.
	EndMaxDuration EndReason = "max_duration"
	// EndDTMF: the caller pressed the terminator key.
	EndDTMF EndReason = "dtmf"
	// EndHangup: the caller hung up; what was said is kept.
	EndHangup EndReason = "hangup"
	// EndNoInput: the caller did not speak within the initial-silence
	// timeout.
	EndNoInput EndReason = "no_input"
)

// Endpointer limits. Durations are rounded up to whole 20 ms frames.
const (
	// MaxEndpointDuration caps MaxRecordTime, SilencePeriod and
	// InitialSilence.
	MaxEndpointDuration = time.Hour
	// dtmfKeys are the keys RFC 4733 events carry.
	dtmfKeys = "0123456789*#ABCD"
)

// EndpointConfig configures an [Endpointer].
type EndpointConfig struct {
	// SilencePeriod is the pause after speech that ends the message
	// (KooKoo's silence_period). Required.
	SilencePeriod time.Duration
	// MaxRecordTime truncates the recording whatever the caller is doing
	// (KooKoo's max_record_time). Required.
	MaxRecordTime time.Duration
	// InitialSilence is how long to wait for speech before ending with
	// no_input; 0, or anything beyond MaxRecordTime, means MaxRecordTime.
	InitialSilence time.Duration
	// TerminatorKey is the DTMF key that ends the recording: one of
	// 0-9 * # A-D, or 0 for none.
	TerminatorKey rune
	// VAD tunes the voice-activity detector; the zero value takes the
	// defaults.
	VAD VADConfig
}

// EndResult describes a recording, ended or not. Offsets count from the
// first sample written and are exact multiples of [FrameDuration].
type EndResult struct {
	// Reason is why the recording ended; empty while it has not.
	Reason EndReason
	// Spoke reports whether the VAD heard any speech.
	Spoke bool
	// SpeechStart is the offset of the first voiced frame (0 if !Spoke).
	SpeechStart time.Duration
	// SpeechEnd is the offset just after the last voiced frame (0 if
	// !Spoke).
	SpeechEnd time.Duration
	// End is the offset where the recording ended (or, before it ends, the
	// audio consumed so far, in whole frames). Truncate the recording here.
	End time.Duration
}

// Endpointer decides when a caller's message is over, from the caller's
// 8 kHz audio, DTMF keys and hang-up. Time is the number of samples
// consumed, never the wall clock, so the same input always gives the same
// result.
//
// # Semantics
//
// A frame is voiced when the [VAD] says so. The recording ends:
//
//   - with [EndSilence] on the frame where SilencePeriod has passed since
//     the end of the last voiced frame (End = SpeechEnd + SilencePeriod);
//   - with [EndNoInput] on the frame where InitialSilence has passed with
//     no voiced frame (End = InitialSilence);
//   - with [EndMaxDuration] on the frame where MaxRecordTime is reached
//     (End = MaxRecordTime), whatever the caller is doing;
//   - with [EndDTMF] when the terminator key arrives, or [EndHangup] on
//     hang-up, at the audio consumed so far.
//
// On a frame where both apply, silence or no_input wins over max_duration.
// While the VAD is deciding whether a sound at the silence or no-input
// deadline is the onset of speech (up to EnterFrames-1 frames), the decision
// waits: if it is speech the message goes on, otherwise the recording ends
// dated at the deadline, so End may be up to EnterFrames-1 frames before the
// audio consumed. Once ended, further input changes nothing. Durations are
// rounded up to whole frames.
//
// An Endpointer is not safe for concurrent use; one call's media loop owns
// it.
type Endpointer struct {
	vad          *VAD
	key          rune
	silence      int64 // samples
	maxSamples   int64
	initial      int64
	buf          [FrameSamples]int16
	fill         int
	consumed     int64 // samples processed in whole frames
	spoke        bool
	speechStart  int64
	lastVoiceEnd int64
	result       EndResult
	done         bool
}

// NewEndpointer validates cfg and returns an Endpointer. Invalid settings
// give an error wrapping [ErrInvalid].
func NewEndpointer(cfg EndpointConfig) (*Endpointer, error) {
	for _, d := range []struct {
		name     string
		v        time.Duration
		optional bool
	}{
		{"silence period", cfg.SilencePeriod, false},
		{"max record time", cfg.MaxRecordTime, false},
		{"initial silence", cfg.InitialSilence, true},
	} {
		if d.v < 0 || (d.v == 0 && !d.optional) || d.v > MaxEndpointDuration {
			return nil, fmt.Errorf("%w: endpoint: %s %v outside (0, %v]", ErrInvalid, d.name, d.v, MaxEndpointDuration)
		}
	}
	if cfg.TerminatorKey != 0 && !strings.ContainsRune(dtmfKeys, cfg.TerminatorKey) {
		return nil, fmt.Errorf("%w: endpoint: terminator key %q is not a DTMF key", ErrInvalid, cfg.TerminatorKey)
	}
	vad, err := NewVAD(cfg.VAD)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	e := &Endpointer{
		vad:        vad,
		key:        cfg.TerminatorKey,
		silence:    frameCeil(cfg.SilencePeriod),
		maxSamples: frameCeil(cfg.MaxRecordTime),
		initial:    frameCeil(cfg.InitialSilence),
	}
	if e.initial == 0 || e.initial > e.maxSamples {
		e.initial = e.maxSamples
	}
	return e, nil
}

// frameCeil converts d to samples, rounded up to whole frames.
func frameCeil(d time.Duration) int64 {
	n := int64(DurationToSamples(d, SampleRate))
	return (n + FrameSamples - 1) / FrameSamples * FrameSamples
}

// Write consumes caller audio at 8 kHz, normally one 20 ms frame
// ([FrameSamples] samples); other lengths are buffered into whole frames.
// done is true on the call that ends the recording, and on every call
// after; samples past the end are ignored.
func (e *Endpointer) Write(frame []int16) (res EndResult, done bool) {
	for len(frame) > 0 && !e.done {
		if e.fill == 0 && len(frame) >= FrameSamples {
			e.step(frame[:FrameSamples])
			frame = frame[FrameSamples:]
			continue
		}
		n := copy(e.buf[e.fill:], frame)
		e.fill += n
		frame = frame[n:]
		if e.fill == FrameSamples {
			e.fill = 0
			e.step(e.buf[:])
		}
	}
	return e.Result(), e.done
}

func (e *Endpointer) step(frame []int16) {
	d := e.vad.Frame(frame)
	start := e.consumed
	e.consumed += FrameSamples
	if d.Voiced {
		if !e.spoke {
			e.spoke = true
			e.speechStart = start - int64(d.Started-1)*FrameSamples
		}
		e.lastVoiceEnd = e.consumed
	}
	// A sound that may be the onset of speech (loud, not yet confirmed)
	// holds back the silence and no-input decisions until the VAD has
	// decided, so a pause shorter than the silence period never ends the
	// message; the end is still dated at the deadline.
	decided := !e.vad.Pending() || e.consumed >= e.maxSamples
	switch {
	case e.spoke && decided && e.consumed-e.lastVoiceEnd >= e.silence:
		e.finish(EndSilence, e.lastVoiceEnd+e.silence)
	case !e.spoke && decided && e.consumed >= e.initial:
		e.finish(EndNoInput, e.initial)
	case e.consumed >= e.maxSamples:
		e.finish(EndMaxDuration, e.maxSamples)
	}
}

func (e *Endpointer) finish(r EndReason, end int64) {
	e.done = true
	e.result = e.snapshot()
	e.result.Reason = r
	e.result.End = SamplesToDuration(int(end), SampleRate)
}

func (e *Endpointer) snapshot() EndResult {
	r := EndResult{Spoke: e.spoke, End: SamplesToDuration(int(e.consumed), SampleRate)}
	if e.spoke {
		r.SpeechStart = SamplesToDuration(int(e.speechStart), SampleRate)
		r.SpeechEnd = SamplesToDuration(int(e.lastVoiceEnd), SampleRate)
	}
	return r
}

// DTMF reports a key the caller pressed. The terminator key ends the
// recording with [EndDTMF]; any other key is ignored.
func (e *Endpointer) DTMF(key rune) (res EndResult, done bool) {
	if !e.done && e.key != 0 && key == e.key {
		e.finish(EndDTMF, e.consumed)
	}
	return e.Result(), e.done
}

// Hangup ends the recording with [EndHangup], keeping what was said, and
// returns the result. After another end it returns that end unchanged.
func (e *Endpointer) Hangup() EndResult {
	if !e.done {
		e.finish(EndHangup, e.consumed)
	}
	return e.result
}

// Result returns the final result once the recording has ended, or the
// state so far (empty Reason) before.
func (e *Endpointer) Result() EndResult {
	if e.done {
		return e.result
	}
	return e.snapshot()
}

// Done reports whether the recording has ended.
func (e *Endpointer) Done() bool { return e.done }

// Speaking reports the VAD state now: true while the caller speaks or
// within the hangover after.
func (e *Endpointer) Speaking() bool { return e.vad.Speaking() }
