package sim

import (
	"context"
	"errors"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
)

const (
	// speculateAfter is how long the caller must have been silent before
	// the transcript is finished early (at most half the silence period).
	speculateAfter = 300 * time.Millisecond
	// sttCloseTimeout bounds finishing a transcript.
	sttCloseTimeout = 5 * time.Second
)

type closeResult struct {
	res  stt.Result
	err  error
	took time.Duration // the Close call
}

// liveTranscript streams one <record>'s audio to speech-to-text. So that
// the transcript is ready the moment the end-pointer fires, it finishes
// the stream early, once the caller has been silent for a while; if the
// caller speaks again before the end-pointer fires, the early result is
// dropped and a new stream is fed the whole recording so far.
type liveTranscript struct {
	c       *call
	ctx     context.Context
	vocab   stt.Vocabulary
	stream  stt.Stream
	after   time.Duration
	spec    chan closeResult // early close in flight or done
	specEnd time.Duration    // the speech end the early close covers
	partial string
	frames  int
	// restarts counts early closes undone because the caller went on.
	restarts int
	// busy is the time spent in the recogniser's calls for the stream
	// whose result stands: Start after a restart, Write, and Close (what
	// record mode stores as a turn's stt_ms).
	busy time.Duration
}

// startTranscript opens the fast-path stream; nil when there is no
// speech-to-text for this call or it fails.
func (c *call) startTranscript(ctx context.Context, silence time.Duration) *liveTranscript {
	if c.s.cfg.STT == nil || c.opts.connection == "" {
		return nil
	}
	var vocab stt.Vocabulary
	if c.s.cfg.Vocabulary != nil {
		v, err := c.s.cfg.Vocabulary(ctx, c.opts.connection)
		if err != nil {
			c.log.Warn("vocabulary unavailable", "err", err)
			return nil
		}
		vocab = v
	}
	st, err := c.s.cfg.STT.Start(ctx, vocab)
	if err != nil {
		c.log.Warn("transcription unavailable", "err", err)
		return nil
	}
	return &liveTranscript{c: c, ctx: ctx, vocab: vocab, stream: c.leg.newAsyncStream(st), after: min(speculateAfter, silence/2)}
}

// write feeds one frame, after the end-pointer has seen it (res, speaking)
// and the recorder holds it (rec, for a restart).
func (t *liveTranscript) write(f []int16, res audio.EndResult, speaking bool, rec *audio.Recorder) {
	if t.spec != nil {
		if res.SpeechEnd <= t.specEnd {
			return // still silent: the early transcript stands
		}
		// The caller went on: start over with everything recorded.
		t.spec, t.restarts = nil, t.restarts+1
		began := time.Now()
		defer func() { t.busy += time.Since(began) }()
		t.busy = 0 // the dropped early result's work does not count
		st, err := t.c.s.cfg.STT.Start(t.ctx, t.vocab)
		if err != nil {
			t.c.log.Warn("transcription unavailable", "err", err)
			return
		}
		t.stream = t.c.leg.newAsyncStream(st)
		if err := t.stream.Write(rec.PCM().Samples); err != nil {
			t.fail(err)
		}
		return
	}
	if t.stream == nil {
		return
	}
	began := time.Now()
	err := t.stream.Write(f)
	t.busy += time.Since(began)
	if err != nil {
		t.fail(err)
		return
	}
	t.frames++
	if t.frames%5 == 0 {
		if p := t.stream.Partial(); p != t.partial {
			t.partial = p
			t.c.leg.emit(Event{Type: EventPartial, Text: p})
		}
	}
	if t.after > 0 && res.Spoke && !speaking && res.Reason == "" && res.End-res.SpeechEnd >= t.after {
		t.speculate(res.SpeechEnd)
	}
}

// speculate finishes the stream in the background.
func (t *liveTranscript) speculate(speechEnd time.Duration) {
	st := t.stream
	ch := make(chan closeResult, 1)
	if !t.c.leg.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), sttCloseTimeout)
		defer cancel()
		began := time.Now()
		r, err := st.Close(ctx)
		ch <- closeResult{r, err, recogniserTime(st, time.Since(began))}
	}) {
		return
	}
	t.stream, t.spec, t.specEnd = nil, ch, speechEnd
}

func (t *liveTranscript) fail(err error) {
	t.c.log.Warn("transcription failed", "err", err)
	t.abort()
}

// abort releases the stream without a result.
func (t *liveTranscript) abort() {
	if t.stream != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), sttCloseTimeout)
		_, _ = t.stream.Close(ctx)
		cancel()
		t.stream = nil
	}
	t.spec = nil
}

// finish returns the transcript; ok is false when it is unknown (no
// stream, or speech-to-text failed). A recording without audio has a known
// empty transcript.
func (t *liveTranscript) finish() (stt.Result, bool) {
	var r closeResult
	switch {
	case t.spec != nil:
		r = <-t.spec // bounded by sttCloseTimeout
	case t.stream != nil:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), sttCloseTimeout)
		began := time.Now()
		r.res, r.err = t.stream.Close(ctx)
		r.took = recogniserTime(t.stream, time.Since(began))
		cancel()
		t.stream = nil
	default:
		return stt.Result{}, false
	}
	t.busy += r.took
	switch {
	case r.err == nil:
		return r.res, true
	case errors.Is(r.err, stt.ErrEmptyAudio):
		return stt.Result{}, true
	}
	t.c.log.Warn("transcription failed", "err", r.err)
	return stt.Result{}, false
}

// recogniserTime is the time the recogniser spent on st: its own account
// when it keeps one (an asyncStream, whose Close also waits for queued
// audio), else the Close call's duration.
func recogniserTime(st stt.Stream, closeTook time.Duration) time.Duration {
	if b, ok := st.(interface{ Busy() time.Duration }); ok {
		return b.Busy()
	}
	return closeTook
}
