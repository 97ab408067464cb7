package sim

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
)

// clockRig drives a FrameClock of one shard with a fake clock and ticker.
type clockRig struct {
	clk     *FrameClock
	mu      sync.Mutex
	now     time.Time
	t0      time.Time
	tickers chan *fakeTicker // one per loop the shard starts
	tick    *fakeTicker      // the running loop's
}

func newClockRig() *clockRig {
	r := &clockRig{tickers: make(chan *fakeTicker, 4)}
	r.t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = r.t0
	r.clk = newFrameClock(1, r.clock, func(time.Duration) ticker {
		ft := &fakeTicker{c: make(chan time.Time)}
		r.tickers <- ft
		return ft
	})
	return r
}

func (r *clockRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *clockRig) set(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.t0.Add(d)
}

// fire sets the clock to t0+d and ticks the shard's loop (it returns once
// the loop took the tick; the loop then steps every pacer).
func (r *clockRig) fire(t *testing.T, d time.Duration) {
	t.Helper()
	r.set(d)
	select {
	case r.tick = <-r.tickers: // a loop started since the last tick
	default:
	}
	if r.tick == nil {
		t.Fatalf("tick at %v: no loop running", d)
	}
	r.tick.c <- r.now
}

// drain returns the n writes a sink got, failing on a hang or on more.
func drain(t *testing.T, s chanSink, n int, what string) []sinkWrite {
	t.Helper()
	out := make([]sinkWrite, 0, n)
	deadline := time.NewTimer(5 * time.Second) // a hang is a failure, not a timed assertion
	defer deadline.Stop()
	for range n {
		select {
		case w := <-s.w:
			out = append(out, w)
		case <-deadline.C:
			t.Fatalf("%s: %d frames, want %d", what, len(out), n)
		}
	}
	select {
	case w := <-s.w:
		t.Fatalf("%s: more than %d frames: %+v", what, n, w)
	default:
	}
	return out
}

// TestFrameClockPacesCallsOnSharedTicks: pacers attached to a clock at
// different times have their slots on the shard's ticks (slot 0 is the
// next tick), each tick sends every pacer's due frames from the one loop,
// a late tick is caught up and counted late per pacer as a pacer of its
// own would, and the loop stops with the last pacer and starts again with
// the next.
func TestFrameClockPacesCallsOnSharedTicks(t *testing.T) {
	r := newClockRig()
	ms := time.Millisecond
	sinks := []chanSink{{make(chan sinkWrite, 64)}, {make(chan sinkWrite, 64)}}
	pacers := make([]*pacer, len(sinks))
	for i, s := range sinks {
		pacers[i] = newPacer(s, func(playNote) {})
		pacers[i].now = r.clock
	}
	sh := r.clk.attach(pacers[0]) // at t0: slot 0 is the first tick, t0+20
	r.set(7 * ms)
	if got := r.clk.attach(pacers[1]); got != sh {
		t.Fatalf("one shard, two shards used")
	}
	for i, p := range pacers {
		if want := r.t0.Add(20 * ms); !p.start.Equal(want) {
			t.Errorf("pacer %d: slot 0 at %v, want the shard's next tick %v", i, p.start, want)
		}
	}
	steps := []struct {
		at        time.Duration
		frames    int   // per pacer
		lateSoFar int64 // per pacer
	}{
		{20 * ms, 1, 0},
		{40 * ms, 1, 0},
		{120 * ms, 4, 1},   // slots 60..120: 60 is 60 ms late, 80 exactly 40
		{140 * ms, 1, 1},   // back on schedule
		{1140 * ms, 1, 50}, // 50 slots behind: 49 skipped as late, one sent
	}
	for _, s := range steps {
		r.fire(t, s.at)
		for i, p := range pacers {
			for _, w := range drain(t, sinks[i], s.frames, "pacer at "+s.at.String()) {
				if len(w.audio) != audio.FrameSamples || w.audio[0] != ulawSilence {
					t.Fatalf("pacer %d at %v: want silence frames, got %+v", i, s.at, w)
				}
			}
			if late := p.stats.late.Load(); late != s.lateSoFar {
				t.Errorf("pacer %d at %v: late = %d, want %d", i, s.at, late, s.lateSoFar)
			}
		}
	}

	sh.detach(pacers[0])
	r.fire(t, 1160*ms)
	drain(t, sinks[1], 1, "the pacer left")
	drain(t, sinks[0], 0, "a detached pacer")
	sh.detach(pacers[1]) // the last: the loop stops before detach returns
	sh.mu.Lock()
	stopped := sh.stop == nil
	sh.mu.Unlock()
	if !stopped {
		t.Fatalf("loop still registered after the last pacer left")
	}

	// The next pacer starts a new loop, with slots on its ticks.
	r.set(2000 * ms)
	sh.attach(pacers[0])
	r.tick = nil
	if want := r.t0.Add(2020 * ms); !pacers[0].start.Equal(want) {
		t.Errorf("after a restart, slot 0 at %v, want %v", pacers[0].start, want)
	}
	r.fire(t, 2020*ms)
	drain(t, sinks[0], 1, "after a restart")
	sh.detach(pacers[0])
}

// TestPacerOnClockPlaysAndNotifies: a pacer run on a clock plays its items
// from the shard's ticks and delivers its notes (started, finished,
// flushed) in order from its own goroutine, as a pacer with a ticker does.
func TestPacerOnClockPlaysAndNotifies(t *testing.T) {
	r := newClockRig()
	sink := chanSink{make(chan sinkWrite, 64)}
	notes := make(chan playNote, 16)
	p := newPacer(sink, func(n playNote) { notes <- n })
	p.now = r.clock
	p.clock = r.clk
	p.cmds = make(chan pacerCmd) // unbuffered: see the barrier below
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	r.tick = <-r.tickers // attached: the shard's loop is up

	pcm := make([]int16, 2*audio.FrameSamples)
	for i := range pcm {
		pcm[i] = 8000
	}
	if !p.enqueue(ctx, &playItem{id: 1, pcm: pcm[:audio.FrameSamples]}) ||
		!p.enqueue(ctx, &playItem{id: 2, pcm: pcm}) {
		t.Fatal("enqueue failed")
	}
	// run takes a command only once it applied the one before: after
	// this no-op, both items are queued.
	p.cmds <- pacerCmd{}
	r.fire(t, 20*time.Millisecond)
	r.fire(t, 40*time.Millisecond)
	var enc [1]byte
	audio.EncodeUlaw(enc[:], []int16{8000})
	for i, w := range drain(t, sink, 2, "two ticks") {
		if w.audio[0] != enc[0] {
			t.Errorf("frame %d is not the items' audio", i)
		}
	}
	p.flush(ctx)
	want := []playNote{{id: 1, started: true}, {id: 1}, {id: 2, started: true}, {id: 2, flushed: true}}
	for i, w := range want {
		select {
		case n := <-notes:
			if n.id != w.id || n.started != w.started || n.flushed != w.flushed {
				t.Errorf("note %d = %+v, want %+v", i, n, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("note %d never delivered", i)
		}
	}
	r.fire(t, 60*time.Millisecond)
	if w := drain(t, sink, 1, "after flush"); w[0].audio[0] != ulawSilence {
		t.Errorf("audio continued after flush")
	}
}
