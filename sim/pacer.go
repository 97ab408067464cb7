package sim

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koelvoice/koel/audio"
)

const (
	// lateThreshold is how late a frame may leave before it counts as late.
	lateThreshold = 40 * time.Millisecond
	// maxCatchUp is how many overdue frames one tick sends before the
	// schedule is reset (the rest are skipped and counted late).
	maxCatchUp = 10
	// dtmfFrames is how many 20 ms packets a sent key lasts (100 ms).
	dtmfFrames = 5
	// dtmfGapFrames is the silence between two sent keys.
	dtmfGapFrames = 3
	ulawSilence   = 0xFF
)

// ticker is the part of *time.Ticker the pacer uses; tests inject a fake.
type ticker interface {
	C() <-chan time.Time
	Stop()
}

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

func newRealTicker(d time.Duration) ticker { return realTicker{time.NewTicker(d)} }

// frameSink receives the pacer's packets (an *rtpTrack in production).
type frameSink interface {
	writeAudio(ulaw []byte) error
	writeEvent(ev telephoneEvent, first, last bool) error
}

// playNote tells the owner of a pacer that an item started or finished.
type playNote struct {
	id      uint64
	started bool      // first frame sent (else: finished)
	at      time.Time // when the frame was sent
	flushed bool      // finished because of flush, not played out
}

// playItem is audio or DTMF keys to send.
type playItem struct {
	id   uint64
	pcm  []int16
	keys string
}

type pacerCmd struct {
	item  *playItem
	flush bool
}

// pacerStats are a pacer's counters, readable from any goroutine.
type pacerStats struct {
	sent, late atomic.Int64
}

// pacer sends one 20 ms frame per tick: queued audio, queued DTMF keys, or
// silence. Its schedule is start + n*20 ms; ticks the runtime delays are
// caught up, and frames sent more than 40 ms after their slot count late.
// The ticks come from a ticker of its own, or, when clock is set before
// run starts, from one of the clock's shards (see [FrameClock]).
type pacer struct {
	sink   frameSink
	cmds   chan pacerCmd
	notify func(playNote)
	onLate func()
	onSent func()
	now    func() time.Time
	tick   func(time.Duration) ticker
	stats  pacerStats
	// source, when set before run starts, is asked for a frame whenever
	// nothing is queued (nil: silence). It runs on the goroutine that
	// sends the frame (the pacer's or its clock shard's), so a stream that
	// makes or forwards one frame per slot (the echo app, an echo caller)
	// needs no item, notification or goroutine of its own.
	source func(now time.Time) []int16
	// clock, when set before run starts, sends the frames; nil: the
	// pacer's own ticker.
	clock *FrameClock
	// wake tells run that notes are waiting in out (clock mode).
	wake chan struct{}

	// mu guards the fields below: the sending goroutine (run, or a clock
	// shard) and run's commands share them.
	mu      sync.Mutex
	start   time.Time // slot 0
	n       int64     // slots done since start
	queue   []*playItem
	pos     int // next sample (audio) or packet (keys) of queue[0]
	begun   bool
	out     []playNote // notes for run to deliver, in order
	spare   []playNote
	ulaw    []byte
	silence []byte
	frame   []int16
}

func newPacer(sink frameSink, notify func(playNote)) *pacer {
	p := &pacer{
		sink:    sink,
		cmds:    make(chan pacerCmd, 16),
		notify:  notify,
		now:     time.Now,
		tick:    newRealTicker,
		wake:    make(chan struct{}, 1),
		ulaw:    make([]byte, audio.FrameSamples),
		silence: make([]byte, audio.FrameSamples),
		frame:   make([]int16, audio.FrameSamples),
	}
	for i := range p.silence {
		p.silence[i] = ulawSilence
	}
	return p
}

// enqueue adds an item; it returns false when ctx ends first.
func (p *pacer) enqueue(ctx context.Context, it *playItem) bool {
	select {
	case p.cmds <- pacerCmd{item: it}:
		return true
	case <-ctx.Done():
		return false
	}
}

// flush drops everything queued (each dropped item is reported finished).
func (p *pacer) flush(ctx context.Context) {
	select {
	case p.cmds <- pacerCmd{flush: true}:
	case <-ctx.Done():
	}
}

// run paces frames until ctx ends, and applies commands and delivers
// notes (notify) on its own goroutine.
func (p *pacer) run(ctx context.Context) {
	if p.clock != nil {
		p.runOnClock(ctx)
		return
	}
	p.mu.Lock()
	p.begin(p.now())
	p.mu.Unlock()
	t := p.tick(audio.FrameDuration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-p.cmds:
			p.apply(cmd)
		case <-t.C():
			p.mu.Lock()
			p.step(p.now())
			p.mu.Unlock()
		}
		p.deliverNotes()
	}
}

// runOnClock is run with the frames sent by a clock shard.
func (p *pacer) runOnClock(ctx context.Context) {
	sh := p.clock.attach(p)
	defer sh.detach(p)
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-p.cmds:
			p.apply(cmd)
		case <-p.wake:
		}
		p.deliverNotes()
	}
}

// begin sets slot 0 of the schedule; p.mu is held.
func (p *pacer) begin(start time.Time) {
	p.start, p.n = start, 0
}

// stepShared is a clock shard's tick for p.
func (p *pacer) stepShared() {
	p.mu.Lock()
	p.step(p.now())
	notes := len(p.out) > 0
	p.mu.Unlock()
	if notes {
		select {
		case p.wake <- struct{}{}:
		default: // run is already woken
		}
	}
}

// step sends the frames due at now: one on schedule, several to catch up
// after a delayed tick, none before slot 0; p.mu is held.
func (p *pacer) step(now time.Time) {
	if now.Before(p.start) {
		return
	}
	due := int64(now.Sub(p.start)/audio.FrameDuration) + 1 - p.n
	if due > maxCatchUp {
		// Too far behind: skip the backlog, count it late, resync.
		skipped := due - 1
		p.stats.late.Add(skipped)
		for i := int64(0); i < skipped && p.onLate != nil; i++ {
			p.onLate()
		}
		p.n += skipped
		due = 1
	}
	for ; due > 0; due-- {
		slot := p.start.Add(time.Duration(p.n) * audio.FrameDuration)
		if now.Sub(slot) > lateThreshold {
			p.stats.late.Add(1)
			if p.onLate != nil {
				p.onLate()
			}
		}
		p.sendFrame(now)
		p.n++
	}
}

// deliverNotes hands the notes the sends left to notify, in order, on
// run's goroutine (notify may block until the owner reads).
func (p *pacer) deliverNotes() {
	p.mu.Lock()
	notes := p.out
	p.out, p.spare = p.spare[:0], nil
	p.mu.Unlock()
	for _, n := range notes {
		p.notify(n)
	}
	p.mu.Lock()
	if p.spare == nil {
		p.spare = notes[:0]
	}
	p.mu.Unlock()
}

func (p *pacer) apply(cmd pacerCmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cmd.flush {
		for _, it := range p.queue {
			p.out = append(p.out, playNote{id: it.id, at: p.now(), flushed: true})
		}
		p.queue, p.pos, p.begun = p.queue[:0], 0, false
		return
	}
	if cmd.item != nil {
		p.queue = append(p.queue, cmd.item)
	}
}

// sendFrame sends the next frame of the head item, or silence.
func (p *pacer) sendFrame(now time.Time) {
	p.stats.sent.Add(1)
	if p.onSent != nil {
		p.onSent()
	}
	for len(p.queue) > 0 {
		it := p.queue[0]
		if it.keys != "" {
			if p.sendKeyPacket(it, now) {
				return
			}
			continue
		}
		if p.pos >= len(it.pcm) {
			p.finish(it, now)
			continue
		}
		if !p.begun {
			p.begun = true
			p.out = append(p.out, playNote{id: it.id, started: true, at: now})
		}
		n := copy(p.frame, it.pcm[p.pos:])
		clear(p.frame[n:])
		p.pos += n
		audio.EncodeUlaw(p.ulaw, p.frame)
		_ = p.sink.writeAudio(p.ulaw)
		if p.pos >= len(it.pcm) {
			p.finish(it, now)
		}
		return
	}
	if p.source != nil {
		if f := p.source(now); f != nil {
			n := copy(p.frame, f)
			clear(p.frame[n:])
			audio.EncodeUlaw(p.ulaw, p.frame)
			_ = p.sink.writeAudio(p.ulaw)
			return
		}
	}
	_ = p.sink.writeAudio(p.silence)
}

// sendKeyPacket sends the next packet of a DTMF item: dtmfFrames event
// packets per key (the last one three times with the end bit, as RFC 4733
// §2.5.1.4 asks) then dtmfGapFrames of silence. It reports false when the
// item is exhausted without sending.
func (p *pacer) sendKeyPacket(it *playItem, now time.Time) bool {
	per := dtmfFrames + 2 + dtmfGapFrames // packets per key incl. 2 extra end retransmissions
	k := p.pos / per
	if k >= len(it.keys) {
		p.finish(it, now)
		return false
	}
	if !p.begun {
		p.begun = true
		p.out = append(p.out, playNote{id: it.id, started: true, at: now})
	}
	i := p.pos % per
	p.pos++
	code, _ := dtmfEvent(rune(it.keys[k]))
	dur := uint16(min(i+1, dtmfFrames) * audio.FrameSamples)
	switch {
	case i < dtmfFrames+2:
		ev := telephoneEvent{Event: code, Volume: 10, Duration: dur, End: i >= dtmfFrames-1}
		_ = p.sink.writeEvent(ev, i == 0, i == dtmfFrames+1)
	default:
		_ = p.sink.writeAudio(p.silence)
	}
	return true
}

func (p *pacer) finish(it *playItem, now time.Time) {
	p.queue = p.queue[1:]
	p.pos, p.begun = 0, false
	p.out = append(p.out, playNote{id: it.id, at: now})
}
