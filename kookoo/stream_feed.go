package kookoo

import (
	"context"
	"errors"
	"sync"

	"github.com/koelvoice/koel/audio/stt"
)

// recogniserFeed streams one turn's audio into a recogniser on a goroutine
// of its own, so that neither waiting for a free decoder (or for a new
// vocabulary's model to be built) nor decoding ever holds up the session.
// Audio written before the recogniser is ready waits in the feed; the
// session stops writing when the end-pointer ends the turn, so the feed
// holds at most one turn's audio.
type recogniserFeed struct {
	mu      sync.Mutex
	pending [][]int16
	ended   bool
	kick    chan struct{}
	done    chan struct{}
	res     stt.Result
	err     error
}

// startFeed starts a recogniser for vocab and feeds it.
func startFeed(ctx context.Context, t stt.Transcriber, vocab stt.Vocabulary) *recogniserFeed {
	f := &recogniserFeed{kick: make(chan struct{}, 1), done: make(chan struct{})}
	go f.run(ctx, t, vocab)
	return f
}

// write queues 10 ms of audio (copied).
func (f *recogniserFeed) write(samples []int16) {
	f.mu.Lock()
	f.pending = append(f.pending, append([]int16(nil), samples...))
	f.mu.Unlock()
	f.notify()
}

// end says the turn is over: the recogniser is closed after the queued
// audio and result returns its transcript.
func (f *recogniserFeed) end() {
	f.mu.Lock()
	f.ended = true
	f.mu.Unlock()
	f.notify()
}

func (f *recogniserFeed) notify() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// result waits for the transcript; ctx bounds the wait.
func (f *recogniserFeed) result(ctx context.Context) (stt.Result, error) {
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		return stt.Result{}, ctx.Err()
	}
}

func (f *recogniserFeed) run(ctx context.Context, t stt.Transcriber, vocab stt.Vocabulary) {
	defer close(f.done)
	s, err := t.Start(ctx, vocab)
	if err != nil {
		f.err = err
		f.mu.Lock()
		f.pending = nil
		f.mu.Unlock()
		return
	}
	wrote := false
	for {
		f.mu.Lock()
		batch, ended := f.pending, f.ended
		f.pending = nil
		f.mu.Unlock()
		for _, b := range batch {
			if err == nil {
				err = s.Write(b)
				wrote = true
			}
		}
		if ended {
			break
		}
		select {
		case <-f.kick:
		case <-ctx.Done():
			_, _ = s.Close(context.WithoutCancel(ctx))
			f.err = ctx.Err()
			return
		}
	}
	res, cerr := s.Close(context.WithoutCancel(ctx))
	switch {
	case err != nil:
		f.err = err
	case !wrote || errors.Is(cerr, stt.ErrEmptyAudio):
		f.err = stt.ErrEmptyAudio
	default:
		f.res, f.err = res, cerr
	}
}
