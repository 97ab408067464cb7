package sim

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
)

type fakeTicker struct{ c chan time.Time }

func (f *fakeTicker) C() <-chan time.Time { return f.c }
func (f *fakeTicker) Stop()               {}

type sinkWrite struct {
	audio       []byte
	ev          telephoneEvent
	first, last bool
}

type chanSink struct{ w chan sinkWrite }

func (s chanSink) writeAudio(b []byte) error {
	s.w <- sinkWrite{audio: append([]byte(nil), b...)}
	return nil
}
func (s chanSink) writeEvent(ev telephoneEvent, first, last bool) error {
	s.w <- sinkWrite{ev: ev, first: first, last: last}
	return nil
}

// pacerRig drives a pacer with a fake clock and ticker.
type pacerRig struct {
	p     *pacer
	tick  *fakeTicker
	sink  chanSink
	notes chan playNote
	mu    sync.Mutex
	now   time.Time
	t0    time.Time
}

func newPacerRig(t *testing.T) *pacerRig { return newPacerRigWithSource(t, nil) }

// newPacerRigWithSource is newPacerRig with a frame source set before the
// pacer runs.
func newPacerRigWithSource(t *testing.T, source func(time.Time) []int16) *pacerRig {
	r := &pacerRig{tick: &fakeTicker{c: make(chan time.Time)}, sink: chanSink{make(chan sinkWrite, 1024)}, notes: make(chan playNote, 64)}
	r.t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = r.t0
	r.p = newPacer(r.sink, func(n playNote) { r.notes <- n })
	r.p.cmds = make(chan pacerCmd) // unbuffered: a command is applied before the next tick
	r.p.now = func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }
	r.p.source = source
	started := make(chan struct{})
	r.p.tick = func(time.Duration) ticker { close(started); return r.tick }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.p.run(ctx); close(done) }()
	<-started // the pacer has read its start time
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// at sets the clock to t0+d, ticks, and returns the n writes it caused.
func (r *pacerRig) at(t *testing.T, d time.Duration, n int) []sinkWrite {
	t.Helper()
	r.mu.Lock()
	r.now = r.t0.Add(d)
	r.mu.Unlock()
	r.tick.c <- r.now
	out := make([]sinkWrite, 0, n)
	deadline := time.NewTimer(5 * time.Second) // a hang is a failure, not a timed assertion
	defer deadline.Stop()
	for range n {
		select {
		case w := <-r.sink.w:
			out = append(out, w)
		case <-deadline.C:
			t.Fatalf("tick at %v wrote %d frames, want %d", d, len(out), n)
		}
	}
	select {
	case w := <-r.sink.w:
		t.Fatalf("tick at %v wrote more than %d frames: %+v", d, n, w)
	default:
	}
	return out
}

func TestPacerCatchesUpAndCountsLateFrames(t *testing.T) {
	r := newPacerRig(t)
	ms := time.Millisecond
	steps := []struct {
		at        time.Duration
		frames    int
		lateSoFar int64
	}{
		{20 * ms, 2, 0},    // slots 0 and 20: on time
		{40 * ms, 1, 0},    // slot 40
		{120 * ms, 4, 1},   // slots 60..120: 60 is 60 ms late, 80 exactly 40 (not late)
		{140 * ms, 1, 1},   // back on schedule
		{1140 * ms, 1, 50}, // 50 slots behind: 49 skipped as late, one sent
		{1160 * ms, 1, 50},
	}
	for _, s := range steps {
		got := r.at(t, s.at, s.frames)
		for _, w := range got {
			if len(w.audio) != audio.FrameSamples || w.audio[0] != ulawSilence {
				t.Fatalf("at %v: want silence frames of %d bytes, got %v", s.at, audio.FrameSamples, w)
			}
		}
		if late := r.p.stats.late.Load(); late != s.lateSoFar {
			t.Errorf("at %v: late = %d, want %d", s.at, late, s.lateSoFar)
		}
	}
	if sent := r.p.stats.sent.Load(); sent != 10 {
		t.Errorf("sent = %d, want 10", sent)
	}
}

func TestPacerPlaysItemsInOrderAndNotifies(t *testing.T) {
	r := newPacerRig(t)
	ctx := context.Background()
	pcm := make([]int16, 400) // 2.5 frames: the last is padded with silence
	for i := range pcm {
		pcm[i] = 8000
	}
	r.p.enqueue(ctx, &playItem{id: 1, pcm: pcm})
	r.p.enqueue(ctx, &playItem{id: 2, pcm: pcm[:160]})
	writes := r.at(t, 80*time.Millisecond, 5)
	var enc [1]byte
	audio.EncodeUlaw(enc[:], []int16{8000})
	for i, w := range writes[:4] {
		if w.audio[0] != enc[0] {
			t.Errorf("frame %d starts with %#x, want the item's audio %#x", i, w.audio[0], enc[0])
		}
	}
	if writes[2].audio[100] != ulawSilence {
		t.Errorf("the short last frame is not padded with silence")
	}
	if writes[4].audio[0] != ulawSilence {
		t.Errorf("frame after the queue is not silence")
	}
	want := []playNote{{id: 1, started: true}, {id: 1}, {id: 2, started: true}, {id: 2}}
	for i, w := range want {
		n := <-r.notes
		if n.id != w.id || n.started != w.started || n.flushed {
			t.Errorf("note %d = %+v, want %+v", i, n, w)
		}
	}
}

// TestPacerSourceFillsIdleSlots: with a source, every slot nothing is
// queued for carries the source's next frame (silence when it has none),
// stamped with the slot's send time; queued items go first.
func TestPacerSourceFillsIdleSlots(t *testing.T) {
	var asked []time.Time
	level := int16(0)
	buf := make([]int16, audio.FrameSamples)
	r := newPacerRigWithSource(t, func(now time.Time) []int16 {
		asked = append(asked, now) // the pacer's goroutine; read after the writes below
		level += 2000
		if level > 4000 {
			return nil // out of frames: silence
		}
		for i := range buf {
			buf[i] = level
		}
		return buf // reused: the pacer must copy it
	})
	item := make([]int16, audio.FrameSamples)
	for i := range item {
		item[i] = -8000
	}
	r.p.enqueue(context.Background(), &playItem{id: 1, pcm: item})
	writes := r.at(t, 60*time.Millisecond, 4)
	var enc [4]byte
	audio.EncodeUlaw(enc[:], []int16{-8000, 2000, 4000, 0})
	for i, want := range []byte{enc[0], enc[1], enc[2], ulawSilence} {
		if got := writes[i].audio; got[0] != want || got[len(got)-1] != want {
			t.Errorf("slot %d: frame %#x..%#x, want %#x throughout", i, got[0], got[len(got)-1], want)
		}
	}
	if len(asked) != 3 {
		t.Fatalf("source asked %d times, want 3 (the slots after the queued item)", len(asked))
	}
	for _, at := range asked {
		if want := r.t0.Add(60 * time.Millisecond); !at.Equal(want) {
			t.Errorf("source asked at %v, want the tick's time %v", at, want)
		}
	}
}

func TestPacerFlushDropsQueuedAudio(t *testing.T) {
	r := newPacerRig(t)
	ctx := context.Background()
	r.p.enqueue(ctx, &playItem{id: 7, pcm: make([]int16, 16000)})
	r.at(t, 20*time.Millisecond, 2)
	if n := <-r.notes; n.id != 7 || !n.started {
		t.Fatalf("note = %+v, want item 7 started", n)
	}
	r.p.flush(ctx)
	if n := <-r.notes; n.id != 7 || n.started || !n.flushed {
		t.Fatalf("note = %+v, want item 7 flushed", n)
	}
	if w := r.at(t, 40*time.Millisecond, 1); w[0].audio[0] != ulawSilence {
		t.Errorf("audio continued after flush")
	}
}

func TestPacerSendsRFC4733Keys(t *testing.T) {
	r := newPacerRig(t)
	r.p.enqueue(context.Background(), &playItem{id: 3, keys: "1#"})
	per := dtmfFrames + 2 + dtmfGapFrames
	var writes []sinkWrite
	for i := range 2 * per {
		writes = append(writes, r.at(t, time.Duration(i)*audio.FrameDuration, 1)...)
	}
	for k, key := range []uint8{1, 11} {
		pk := writes[k*per : (k+1)*per]
		for i := 0; i < dtmfFrames+2; i++ {
			w := pk[i]
			if w.audio != nil || w.ev.Event != key {
				t.Fatalf("key %d packet %d = %+v, want telephone-event %d", k, i, w, key)
			}
			if w.first != (i == 0) || w.last != (i == dtmfFrames+1) || w.ev.End != (i >= dtmfFrames-1) {
				t.Errorf("key %d packet %d: first=%v last=%v end=%v", k, i, w.first, w.last, w.ev.End)
			}
			if want := uint16(min(i+1, dtmfFrames) * audio.FrameSamples); w.ev.Duration != want {
				t.Errorf("key %d packet %d duration %d, want %d", k, i, w.ev.Duration, want)
			}
		}
		for _, w := range pk[dtmfFrames+2:] {
			if w.audio == nil {
				t.Errorf("key %d: want silence between keys", k)
			}
		}
	}
}
