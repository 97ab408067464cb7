package kookoo

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/koelvoice/koel/audio/stt"
)

// recogniserFeed streams one turn's audio into a recogniser on a goroutine
// of its own, so that neither waiting for a free decoder (or for a new
// vocabulary's model to be built) nor decoding ever holds up the session.
//
// To have the transcript ready when the end-pointer fires, the session
// asks the feed to speculate once the caller has paused: the recogniser is
// closed on the audio so far and its result kept. If the caller goes on
// (resume), the speculation is dropped and a new recogniser is fed the
// whole turn again; if the turn ends with the pause, the kept result is the
// transcript (what followed was silence). The feed keeps the turn's audio
// for that; the session stops writing when the end-pointer ends the turn,
// so it holds at most one turn (max_record_time).
type recogniserFeed struct {
	mu      sync.Mutex
	audio   [][]int16
	ended   bool
	specs   int // speculations asked for
	resumes int // resumptions asked for (resumes <= specs)
	kick    chan struct{}
	done    chan struct{}
	res     stt.Result
	err     error
	// speculated reports (after done) whether the result came from a
	// speculation, for the log.
	speculated bool
	// candidates counts the speculations computed.
	candidates atomic.Int32
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
	f.audio = append(f.audio, append([]int16(nil), samples...))
	f.mu.Unlock()
	f.notify()
}

// speculate asks for a transcript of the audio so far.
func (f *recogniserFeed) speculate() { f.change(func() { f.specs++ }) }

// resume drops the speculation: the caller went on.
func (f *recogniserFeed) resume() {
	f.change(func() {
		if f.resumes < f.specs {
			f.resumes++
		}
	})
}

// end says the turn is over; result returns its transcript.
func (f *recogniserFeed) end() { f.change(func() { f.ended = true }) }

func (f *recogniserFeed) change(do func()) {
	f.mu.Lock()
	do()
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

// candidate is the result of a speculation.
type candidate struct {
	spec int
	res  stt.Result
	err  error
}

func (f *recogniserFeed) run(ctx context.Context, t stt.Transcriber, vocab stt.Vocabulary) {
	defer close(f.done)
	var (
		s    stt.Stream
		fed  int // frames written to s
		cand *candidate
		err  error // a Write error of s
	)
	defer func() {
		if s != nil {
			_, _ = s.Close(context.WithoutCancel(ctx))
		}
		f.mu.Lock()
		f.audio = nil
		f.mu.Unlock()
	}()
	open := func() bool {
		s, err = t.Start(ctx, vocab)
		if err != nil {
			s = nil
			f.err = err
			return false
		}
		fed = 0
		return true
	}
	feed := func(all [][]int16) {
		for ; fed < len(all) && err == nil; fed++ {
			err = s.Write(all[fed])
		}
	}
	closeStream := func() (stt.Result, error) {
		res, cerr := s.Close(context.WithoutCancel(ctx))
		s = nil
		switch {
		case err != nil:
			return stt.Result{}, err
		case fed == 0 || errors.Is(cerr, stt.ErrEmptyAudio):
			return stt.Result{}, stt.ErrEmptyAudio
		}
		return res, cerr
	}
	if !open() {
		return
	}
	for {
		f.mu.Lock()
		all, ended, specs, resumes := f.audio, f.ended, f.specs, f.resumes
		f.mu.Unlock()
		speculating := specs > resumes
		switch {
		case ended && speculating && cand != nil && cand.spec == specs:
			// The turn ended in the pause the speculation began with.
			f.res, f.err, f.speculated = cand.res, cand.err, true
			return
		case ended:
			if s == nil && !open() {
				return
			}
			feed(all)
			f.res, f.err = closeStream()
			return
		case speculating && (cand == nil || cand.spec != specs):
			if s == nil && !open() {
				return
			}
			feed(all)
			res, cerr := closeStream()
			cand = &candidate{spec: specs, res: res, err: cerr}
			err = nil
			f.candidates.Add(1)
		case !speculating:
			cand = nil
			if s == nil && !open() {
				return
			}
			feed(all)
		}
		select {
		case <-f.kick:
		case <-ctx.Done():
			f.err = ctx.Err()
			return
		}
	}
}
