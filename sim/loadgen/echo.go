package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koelvoice/koel/sim"
)

// DefaultRampRate is [Config.RampRate]'s default: calls a second before
// the burst.
const DefaultRampRate = 25

// Frames is what the echo scenario's calls measured of their media, summed
// over the calls.
type Frames struct {
	// Sent is how many numbered frames the callers sent; Echoed how many
	// came back, Lost how many did not.
	Sent   int `json:"sent"`
	Echoed int `json:"echoed"`
	Lost   int `json:"lost"`
	// Late counts frames that reached the callers more than 40 ms after
	// their slot behind the frame before (a gap over 60 ms in a call's
	// stream from the server).
	Late int `json:"late_arrivals"`
	// Duplicates and Corrupt count frames heard twice, and audio heard
	// that was neither silence nor a frame sent.
	Duplicates int `json:"duplicates"`
	Corrupt    int `json:"corrupt"`
	// GeneratorLate counts frames the load generator's own callers sent
	// more than 40 ms late: when it is not 0, the generator, not koel,
	// fell behind.
	GeneratorLate int64 `json:"generator_late"`
	// Connected is how many calls got their echo up; BurstConnected how
	// many of the burst did.
	Connected      int `json:"connected"`
	BurstConnected int `json:"burst_connected"`
	// PeakCalls is the most calls streaming at once.
	PeakCalls int `json:"peak_calls"`
	// HandshakesQueued is how many offers waited for a server handshake
	// slot during the run (koel_sim_handshakes_queued_total), -1 when the
	// target's /metrics could not be read.
	HandshakesQueued int `json:"handshakes_queued"`
}

// echo places softphone calls to the echo app: the first Sessions-Burst
// arrive at RampRate a second, the last Burst at once when those are up;
// every call streams numbered frames until the run's end.
type echo struct {
	cfg  Config
	ramp int
	// rampUp is closed once the ramp's calls are up or failed.
	rampUp  chan struct{}
	settled atomic.Int64
	start   time.Time

	streaming, peak atomic.Int64

	lateBefore, queuedBefore float64
	metricsOK                bool

	// clock sends every caller's frames.
	clock *sim.FrameClock

	mu     sync.Mutex
	frames Frames
}

func newEcho(cfg Config) (*echo, error) {
	if cfg.Concurrency != cfg.Sessions {
		return nil, fmt.Errorf("loadgen: the echo scenario runs every call at once: -c (%d) must equal -sessions (%d)", cfg.Concurrency, cfg.Sessions)
	}
	if cfg.Burst < 0 || cfg.Burst > cfg.Sessions {
		return nil, fmt.Errorf("loadgen: burst %d outside 0..%d calls", cfg.Burst, cfg.Sessions)
	}
	if cfg.RampRate < 0 {
		return nil, errors.New("loadgen: negative ramp rate")
	}
	if cfg.RampRate == 0 {
		cfg.RampRate = DefaultRampRate
	}
	e := &echo{cfg: cfg, ramp: cfg.Sessions - cfg.Burst, rampUp: make(chan struct{}), start: time.Now(), clock: sim.NewFrameClock(0)}
	if e.ramp == 0 {
		close(e.rampUp)
	}
	l, ok1 := metricValue(context.Background(), cfg, "koel_sim_frames_late_total")
	q, ok2 := metricValue(context.Background(), cfg, "koel_sim_handshakes_queued_total")
	e.lateBefore, e.queuedBefore, e.metricsOK = l, q, ok1 && ok2
	return e, nil
}

func (e *echo) close() {}

// inFlight is how many calls are streaming.
func (e *echo) inFlight() int { return int(e.streaming.Load()) }

// settle counts a ramp call up (or failed); the last one lets the burst go.
func (e *echo) settle(n int) {
	if n < e.ramp && e.settled.Add(1) == int64(e.ramp) {
		close(e.rampUp)
	}
}

func (e *echo) session(ctx context.Context, n int, rec *recorder) error {
	var once sync.Once
	settle := func() { once.Do(func() { e.settle(n) }) }
	defer settle()
	if n < e.ramp {
		at := e.start.Add(time.Duration(float64(n) / e.cfg.RampRate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	} else {
		select {
		case <-e.rampUp:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	burst := n >= e.ramp && e.cfg.Burst > 0
	up := false
	res, err := sim.EchoCall(ctx, sim.EchoConfig{Server: e.cfg.Target, Token: e.cfg.Token, Until: e.cfg.stopAt, HTTPClient: e.cfg.Client, Clock: e.clock,
		OnUp: func() {
			up = true
			if c := e.streaming.Add(1); c > e.peak.Load() {
				e.peak.Store(c) // a racy max is fine: it only ever lags by one
			}
			settle()
		}})
	if up {
		e.streaming.Add(-1)
		kind := "handshake"
		if burst {
			kind = "handshake_burst"
		}
		rec.observe(kind, res.Handshake)
		for _, d := range res.RTT {
			rec.observe("echo_rtt", d)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	f := &e.frames
	f.Sent, f.Echoed, f.Lost, f.Late = f.Sent+res.Sent, f.Echoed+res.Echoed, f.Lost+res.Lost, f.Late+res.Late
	f.Duplicates, f.Corrupt, f.GeneratorLate = f.Duplicates+res.Duplicates, f.Corrupt+res.Corrupt, f.GeneratorLate+res.CallerLate
	if up {
		f.Connected++
		if burst {
			f.BurstConnected++
		}
	}
	return err
}

// finish adds the frames and the server's late frames and queued
// handshakes over the run.
func (e *echo) finish(ctx context.Context, rep *Report) {
	e.mu.Lock()
	f := e.frames
	e.mu.Unlock()
	f.PeakCalls = int(e.peak.Load())
	l, ok1 := metricValue(ctx, e.cfg, "koel_sim_frames_late_total")
	q, ok2 := metricValue(ctx, e.cfg, "koel_sim_handshakes_queued_total")
	if e.metricsOK && ok1 && ok2 {
		rep.LateFrames, f.HandshakesQueued = int(l-e.lateBefore), int(q-e.queuedBefore)
	} else {
		rep.LateFrames, f.HandshakesQueued = -1, -1
	}
	rep.Frames = &f
}
