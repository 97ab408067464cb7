package sim

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koelvoice/koel/audio"
)

// FrameClock paces the frames of many calls from a few goroutines: each
// of its shards wakes once per 20 ms slot and sends the frame due of every
// call it holds, where a pacer of its own would take a timer and a
// goroutine wake-up per call and frame (15,000 a second at 300 calls).
// A call's slots are aligned to its shard's ticks, so a frame leaves at
// its slot plus the shard's wake-up delay, never up to a tick behind.
//
// A shard's goroutine runs only while it holds calls. The zero value is
// not usable; see [NewFrameClock]. It is safe for concurrent use.
type FrameClock struct {
	shards []*clockShard
}

// NewFrameClock returns a clock of n shards (n <= 0: GOMAXPROCS).
func NewFrameClock(n int) *FrameClock {
	return newFrameClock(n, time.Now, newRealTicker)
}

func newFrameClock(n int, now func() time.Time, tick func(time.Duration) ticker) *FrameClock {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	c := &FrameClock{shards: make([]*clockShard, n)}
	for i := range c.shards {
		c.shards[i] = &clockShard{now: now, tick: tick, pacers: map[*pacer]struct{}{}}
	}
	return c
}

// attach adds p to the least loaded shard and returns it; p's schedule
// starts at that shard's next tick.
func (c *FrameClock) attach(p *pacer) *clockShard {
	best := c.shards[0]
	for _, sh := range c.shards[1:] {
		if sh.count.Load() < best.count.Load() {
			best = sh
		}
	}
	best.attach(p)
	return best
}

// clockShard is one goroutine's share of a FrameClock.
type clockShard struct {
	now  func() time.Time
	tick func(time.Duration) ticker

	count atomic.Int64 // len(pacers), read without mu to pick a shard

	mu     sync.Mutex
	pacers map[*pacer]struct{}
	// t0 is when the running loop started: its ticks are t0 + k*20 ms,
	// k >= 1. stop and done belong to the running loop (nil when
	// none runs).
	t0   time.Time
	stop chan struct{}
	done chan struct{}
}

// attach starts p's schedule at the shard's next tick, starting the
// shard's loop when it was idle.
func (sh *clockShard) attach(p *pacer) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := sh.now()
	if sh.stop == nil {
		sh.stop, sh.done = make(chan struct{}), make(chan struct{})
		sh.t0 = now
		go sh.loop(sh.tick(audio.FrameDuration), sh.stop, sh.done)
	}
	// The next tick after now is the pacer's slot 0.
	k := now.Sub(sh.t0)/audio.FrameDuration + 1
	p.begin(sh.t0.Add(k * audio.FrameDuration))
	sh.pacers[p] = struct{}{}
	sh.count.Store(int64(len(sh.pacers)))
}

// detach removes p; once it returns, the shard no longer steps p. The
// last pacer out stops the loop and waits for it.
func (sh *clockShard) detach(p *pacer) {
	sh.mu.Lock()
	delete(sh.pacers, p)
	sh.count.Store(int64(len(sh.pacers)))
	if len(sh.pacers) > 0 || sh.stop == nil {
		sh.mu.Unlock()
		return
	}
	stop, done := sh.stop, sh.done
	sh.stop, sh.done = nil, nil
	sh.mu.Unlock()
	close(stop)
	<-done
}

// loop steps every pacer of the shard at each tick until stop closes.
func (sh *clockShard) loop(t ticker, stop, done chan struct{}) {
	defer close(done)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C():
			sh.mu.Lock()
			if sh.stop != stop { // a newer loop took over
				sh.mu.Unlock()
				return
			}
			for p := range sh.pacers {
				p.stepShared()
			}
			sh.mu.Unlock()
		}
	}
}
