package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxHandshakes is [Config.MaxHandshakes]'s default.
const DefaultMaxHandshakes = 8

// maxEchoBacklog bounds the caller frames an echo call holds for its
// pacer; past it, frames are dropped (and the caller sees them lost).
const maxEchoBacklog = 50

// handshakes bounds the offers negotiating at once (building the peer,
// ICE, DTLS, SCTP), so that a burst of new calls queues for a slot instead
// of taking the CPU from the media of calls already up.
type handshakes struct {
	slots    chan struct{}
	wait     time.Duration
	log      *slog.Logger
	inFlight prometheus.Gauge
	queued   prometheus.Counter
	waited   prometheus.Histogram
	took     prometheus.Histogram
}

func newHandshakes(n int, wait time.Duration, reg prometheus.Registerer, log *slog.Logger) (*handshakes, error) {
	h := &handshakes{
		slots: make(chan struct{}, n),
		wait:  wait,
		log:   log,
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "koel_sim_handshakes_in_progress", Help: "Softphone offers negotiating (ICE, DTLS) now; at most the handshake limit.",
		}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "koel_sim_handshakes_queued_total", Help: "Softphone offers that waited for a handshake slot.",
		}),
		waited: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "koel_sim_handshake_wait_seconds", Help: "Time an offer waited for a handshake slot.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2, 5, 10},
		}),
		took: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "koel_sim_handshake_seconds", Help: "Time from a handshake slot to the media connected (ICE and DTLS).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 15},
		}),
	}
	for _, c := range []prometheus.Collector{h.inFlight, h.queued, h.waited, h.took} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("sim: register handshake metrics: %w", err)
		}
	}
	return h, nil
}

// acquire takes a handshake slot, waiting at most h.wait; the returned
// release is idempotent.
func (h *handshakes) acquire(ctx context.Context) (release func(), err error) {
	start := time.Now()
	select {
	case h.slots <- struct{}{}:
	default:
		h.queued.Inc()
		t := time.NewTimer(h.wait)
		defer t.Stop()
		select {
		case h.slots <- struct{}{}:
			h.log.Info("offer queued for a handshake slot", "waited", time.Since(start).Round(time.Millisecond), "limit", cap(h.slots))
		case <-t.C:
			return nil, fmt.Errorf("%w: no handshake slot within %v (limit %d)", ErrTooManyCalls, h.wait, cap(h.slots))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	h.waited.Observe(time.Since(start).Seconds())
	h.inFlight.Inc()
	got := time.Now()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.took.Observe(time.Since(got).Seconds())
			h.inFlight.Dec()
			<-h.slots
		})
	}, nil
}

// holdUntilConnected releases a leg's handshake slot once its media is up,
// it ended, or connectTimeout passed.
func (l *leg) holdUntilConnected(release func()) {
	if !l.goTracked(func() {
		defer release()
		t := time.NewTimer(connectTimeout)
		defer t.Stop()
		select {
		case <-l.connected:
		case <-l.ended:
		case <-t.C:
		}
	}) {
		release()
	}
}

// echo is the echo app: once the media is up, every 20 ms frame the caller
// sends is played back to it through the call's pacer, with no app, no
// speech-to-text and no bot. It measures the media path alone (koel load
// echo).
func (c *call) echo(ctx context.Context) (result, reason, why string) {
	t := time.NewTimer(connectTimeout)
	select {
	case <-c.leg.connected:
		t.Stop()
	case <-c.leg.ended:
		t.Stop()
		return resultCallerHangup, "caller", "hung up before media connected"
	case <-t.C:
		return resultFailed, "error", "media did not connect"
	case <-ctx.Done():
		t.Stop()
		return resultFailed, "error", context.Cause(ctx).Error()
	}
	// The pacer takes each caller frame straight from the reader's
	// channel at its slot: no item, note or wake-up of this goroutine per
	// frame. A backlog past maxEchoBacklog (the caller sent faster than
	// the pacer's clock, or the pacer fell behind) loses its oldest frames.
	var dropped atomic.Int64
	frames := c.leg.frames
	c.leg.pacer.source = func(time.Time) []int16 {
		for len(frames) > maxEchoBacklog {
			<-frames
			dropped.Add(1)
		}
		select {
		case f := <-frames:
			return f
		default:
			return nil
		}
	}
	if !c.leg.goTracked(func() { c.leg.pacer.run(ctx) }) {
		return resultCallerHangup, "caller", "hung up before media connected"
	}
	c.leg.emit(Event{Type: EventCall, CallID: c.id, SID: c.sid, Text: "echo"})
	defer func() {
		if n := dropped.Load(); n > 0 {
			c.log.Warn("echo dropped caller frames", "frames", n)
		}
	}()
	for {
		select {
		case <-c.leg.notes:
		case <-c.leg.digits:
		case <-c.leg.ended:
			if err := c.leg.endCause(); err != nil && !errors.Is(err, ErrCallerHangup) {
				return resultFailed, "caller", err.Error()
			}
			return resultCallerHangup, "caller", ""
		case <-ctx.Done():
			return resultFailed, "error", context.Cause(ctx).Error()
		}
	}
}
