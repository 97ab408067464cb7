package kookoo

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koelvoice/koel/audio/stt"
)

// Padding kept around the speech the end-pointer found when the turn is
// transcribed: pocketsphinx's per-utterance CMN is sensitive to it (700 ms
// after the speech is what its tuning corpus has; 400 ms turned "i want to
// talk to an agent" into "i want to to when the").
const (
	speechLead  = 30 // frames (300 ms) before the first voiced frame
	speechTrail = 70 // frames (700 ms) after the last voiced frame
)

// speechSpan is a turn's speech in 10 ms frames: [start, end).
type speechSpan struct{ start, end int }

// recogniserFeed transcribes one turn on a goroutine of its own, so that
// neither waiting for a free decoder (or for a vocabulary's model to be
// built) nor decoding ever holds up the session. The session writes every
// frame; the feed keeps them (at most one turn: the session stops at the
// end-pointer's max_record_time) and transcribes the speech span with a
// little padding, as a recording of the caller's words would be, holding a
// decoder only while it decodes.
//
// To have the transcript ready when the end-pointer fires, the session
// asks for it on the caller's pause (speculate, with the span so far). If
// the turn ends with the same span (the caller did not speak again), that
// result is the transcript; otherwise the final span is transcribed.
type recogniserFeed struct {
	mu    sync.Mutex
	audio [][]int16
	spec  *speechSpan // the latest speculation asked for
	final *speechSpan // the end of the turn (nil: not yet)
	kick  chan struct{}
	done  chan struct{}
	res   stt.Result
	err   error
	// took is how long the recogniser worked on the result's span, from
	// asking for a decoder to the final result (what record mode stores
	// as the turn's stt_ms).
	took time.Duration
	// speculated reports (after done) whether the result came from a
	// speculation.
	speculated bool
	// candidates counts the speculations transcribed.
	candidates atomic.Int32
	// pcm is the audio the result was transcribed from (the speech span
	// with its padding), set before done: the voice service's
	// closed-vocabulary passes decode it again ([ivr.HeldAudio]).
	pcm []int16
}

// startFeed starts a feed that transcribes with t and vocab.
func startFeed(ctx context.Context, t stt.Transcriber, vocab stt.Vocabulary) *recogniserFeed {
	f := &recogniserFeed{kick: make(chan struct{}, 1), done: make(chan struct{})}
	go f.run(ctx, t, vocab)
	return f
}

// write keeps 10 ms of audio (copied).
func (f *recogniserFeed) write(samples []int16) {
	f.mu.Lock()
	f.audio = append(f.audio, append([]int16(nil), samples...))
	f.mu.Unlock()
}

// frames returns how many frames were written.
func (f *recogniserFeed) frames() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.audio)
}

// speculate asks for the transcript of span now.
func (f *recogniserFeed) speculate(span speechSpan) { f.change(func() { f.spec = &span }) }

// end says the turn is over with its speech in span (empty: none).
func (f *recogniserFeed) end(span speechSpan) { f.change(func() { f.final = &span }) }

func (f *recogniserFeed) change(do func()) {
	f.mu.Lock()
	do()
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// HeldPCM implements [ivr.HeldAudio]: the audio of the result, once the
// feed is done.
func (f *recogniserFeed) HeldPCM() ([]int16, bool) {
	select {
	case <-f.done:
		return f.pcm, len(f.pcm) > 0
	default:
		return nil, false
	}
}

// result waits for the transcript and says how long the recogniser worked
// on it; ctx bounds the wait.
func (f *recogniserFeed) result(ctx context.Context) (stt.Result, time.Duration, error) {
	select {
	case <-f.done:
		return f.res, f.took, f.err
	case <-ctx.Done():
		return stt.Result{}, 0, ctx.Err()
	}
}

func (f *recogniserFeed) run(ctx context.Context, t stt.Transcriber, vocab stt.Vocabulary) {
	defer close(f.done)
	defer func() {
		f.mu.Lock()
		f.audio = nil
		f.mu.Unlock()
	}()
	type candidate struct {
		span speechSpan
		res  stt.Result
		err  error
		took time.Duration
		pcm  []int16
	}
	var cand *candidate
	decode := func(span speechSpan) (stt.Result, time.Duration, []int16, error) {
		began := time.Now()
		res, pcm, err := f.decode(ctx, t, vocab, span)
		return res, time.Since(began), pcm, err
	}
	for {
		f.mu.Lock()
		spec, final := f.spec, f.final
		f.spec = nil
		f.mu.Unlock()
		switch {
		case final != nil && final.end <= final.start:
			f.err = stt.ErrEmptyAudio
			return
		case final != nil && cand != nil && cand.span == *final:
			f.res, f.err, f.took, f.pcm, f.speculated = cand.res, cand.err, cand.took, cand.pcm, true
			return
		case final != nil:
			f.res, f.took, f.pcm, f.err = decode(*final)
			return
		case spec != nil && (cand == nil || cand.span != *spec):
			res, took, pcm, err := decode(*spec)
			cand = &candidate{span: *spec, res: res, err: err, took: took, pcm: pcm}
			f.candidates.Add(1)
			continue
		}
		select {
		case <-f.kick:
		case <-ctx.Done():
			f.err = ctx.Err()
			return
		}
	}
}

// decode transcribes span of the audio kept so far, with its padding, and
// returns the audio it transcribed.
func (f *recogniserFeed) decode(ctx context.Context, t stt.Transcriber, vocab stt.Vocabulary, span speechSpan) (stt.Result, []int16, error) {
	f.mu.Lock()
	all := f.audio
	f.mu.Unlock()
	from, to := max(0, span.start-speechLead), span.end+speechTrail
	if from >= min(len(all), to) {
		return stt.Result{}, nil, stt.ErrEmptyAudio
	}
	s, err := t.Start(ctx, vocab)
	if err != nil {
		return stt.Result{}, nil, err
	}
	silence := make([]int16, StreamFrameSamples)
	pcm := make([]int16, 0, (to-from)*StreamFrameSamples)
	for i := from; i < to && err == nil; i++ {
		// The trail not heard yet (a speculation) is silence.
		fr := silence
		if i < len(all) {
			fr = all[i]
		}
		pcm = append(pcm, fr...)
		err = s.Write(fr)
	}
	if err != nil {
		_, _ = s.Close(context.WithoutCancel(ctx))
		return stt.Result{}, nil, err
	}
	res, err := s.Close(context.WithoutCancel(ctx))
	return res, pcm, err
}
