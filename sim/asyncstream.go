package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/stt"
)

// partialEvery is how many written frames of audio (20 ms each) pass
// between two partial hypotheses read from the recogniser.
const partialEvery = 5

// asyncStream feeds a recogniser stream from a goroutine of its own. A
// <record>'s end-pointer runs on every caller frame; fed synchronously, a
// recogniser slower than real time (a loaded machine, a first decode) held
// the frame loop back until the leg's frame queue overflowed, the caller's
// words were dropped, and the record ended no_input although the caller
// had spoken. Now the end-pointer sees every frame on time, and only the
// transcript waits for the recogniser. The backlog is bounded by the
// record's maxduration, as the recording is.
type asyncStream struct {
	st stt.Stream

	mu        sync.Mutex
	wake      *sync.Cond
	pending   []int16 // written, not yet handed to st
	closing   bool    // Close called: drain, then stop
	abandoned bool    // Close gave up waiting: the worker closes st
	err       error   // sticky error of st.Write
	partial   string
	busy      time.Duration // time in st's Write, Partial and Close calls

	done chan struct{} // the worker returned
}

// newAsyncStream starts feeding st on a goroutine that the leg tracks. It
// returns st itself when the leg is closing and can start no goroutine.
func (l *leg) newAsyncStream(st stt.Stream) stt.Stream {
	a := &asyncStream{st: st, done: make(chan struct{})}
	a.wake = sync.NewCond(&a.mu)
	if !l.goTracked(a.run) {
		return st
	}
	return a
}

// Write queues a copy of pcm for the recogniser; it never waits for it.
// An error of an earlier write is returned, and the audio dropped.
func (a *asyncStream) Write(pcm []int16) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closing:
		return stt.ErrClosed
	case a.err != nil:
		return a.err
	}
	a.pending = append(a.pending, pcm...)
	a.wake.Signal()
	return nil
}

// Partial returns the latest partial hypothesis the worker read.
func (a *asyncStream) Partial() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.partial
}

// Close waits until the queued audio reached the recogniser, then finishes
// the utterance. When ctx ends first, it returns ctx's error, and the
// worker closes the stream once it has caught up.
func (a *asyncStream) Close(ctx context.Context) (stt.Result, error) {
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		return stt.Result{}, stt.ErrClosed
	}
	a.closing = true
	a.wake.Signal()
	a.mu.Unlock()
	select {
	case <-a.done:
	case <-ctx.Done():
		a.mu.Lock()
		select {
		case <-a.done: // finished meanwhile: close below
		default:
			a.abandoned = true
			a.mu.Unlock()
			return stt.Result{}, fmt.Errorf("sim: transcript not caught up: %w", ctx.Err())
		}
		a.mu.Unlock()
	}
	a.mu.Lock()
	err := a.err
	a.mu.Unlock()
	began := time.Now()
	r, cerr := a.st.Close(ctx)
	a.mu.Lock()
	a.busy += time.Since(began)
	a.mu.Unlock()
	if err != nil {
		return stt.Result{}, err
	}
	return r, cerr
}

// Busy is the time the recogniser spent on this stream: its writes,
// partial hypotheses and close, without the time audio waited in the queue.
func (a *asyncStream) Busy() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.busy
}

// run hands queued audio to the recogniser until Close, draining first.
func (a *asyncStream) run() {
	var batch []int16
	written := 0
	for {
		a.mu.Lock()
		for len(a.pending) == 0 && !a.closing {
			a.wake.Wait()
		}
		if len(a.pending) == 0 { // closing, and nothing left
			// done closes under the lock that Close checks it under, so
			// a Close that gives up either sees it closed or is seen
			// abandoned here.
			abandoned := a.abandoned
			close(a.done)
			a.mu.Unlock()
			if abandoned {
				a.closeAbandoned()
			}
			return
		}
		batch, a.pending = a.pending, batch[:0]
		failed := a.err != nil
		a.mu.Unlock()
		if failed {
			continue // drop audio after an error; Close reports it
		}
		began := time.Now()
		err := a.st.Write(batch)
		written += len(batch)
		var partial string
		readPartial := err == nil && written >= partialEvery*audio.FrameSamples
		if readPartial {
			partial, written = a.st.Partial(), 0
		}
		took := time.Since(began)
		a.mu.Lock()
		a.busy += took
		if err != nil {
			a.err = err
		}
		if readPartial {
			a.partial = partial
		}
		a.mu.Unlock()
	}
}

// closeAbandoned releases the stream of a Close that stopped waiting.
func (a *asyncStream) closeAbandoned() {
	ctx, cancel := context.WithTimeout(context.Background(), sttCloseTimeout)
	defer cancel()
	_, _ = a.st.Close(ctx)
}
