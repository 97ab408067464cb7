package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/koelvoice/koel/audio"
)

const (
	// echoBits is what an echo frame carries: 8 sync bits, a 24-bit
	// frame number and an 8-bit check, each bit in echoRepeat samples of
	// ±echoLevel, so that it survives µ-law both ways.
	echoBits   = 40
	echoRepeat = audio.FrameSamples / echoBits
	echoLevel  = 8000
	echoSync   = 0xA5
	// echoTail is how long the caller waits for the last frames to come
	// back after it stops sending.
	echoTail = time.Second
	// DefaultEchoHold is how long an echo call streams by default.
	DefaultEchoHold = 10 * time.Second
)

// echoFrame is frame number n of an echo call.
func echoFrame(n uint32) []int16 {
	f := make([]int16, audio.FrameSamples)
	writeEchoFrame(f, n)
	return f
}

// writeEchoFrame writes frame number n into f (audio.FrameSamples long).
func writeEchoFrame(f []int16, n uint32) {
	n &= 0xFFFFFF
	bits := uint64(echoSync)<<32 | uint64(n)<<8 | uint64(echoCheck(n))
	for i := range echoBits {
		v := int16(-echoLevel)
		if bits>>(echoBits-1-i)&1 == 1 {
			v = echoLevel
		}
		for j := range echoRepeat {
			f[i*echoRepeat+j] = v
		}
	}
}

func echoCheck(n uint32) uint8 { return uint8(n) ^ uint8(n>>8) ^ uint8(n>>16) ^ 0x5A }

// readEchoFrame decodes an echo frame's number (each bit by majority of
// its samples' signs); false for anything else, silence included.
func readEchoFrame(f []int16) (uint32, bool) {
	if len(f) != audio.FrameSamples {
		return 0, false
	}
	var bits uint64
	for i := range echoBits {
		pos := 0
		for _, s := range f[i*echoRepeat : (i+1)*echoRepeat] {
			if s > 0 {
				pos++
			}
		}
		bits <<= 1
		if 2*pos > echoRepeat {
			bits |= 1
		}
	}
	n := uint32(bits>>8) & 0xFFFFFF
	if bits>>32 != echoSync || uint8(bits) != echoCheck(n) {
		return 0, false
	}
	return n, true
}

// EchoConfig configures one [EchoCall].
type EchoConfig struct {
	// Server is koel's base URL; Token the softphone token outside
	// development mode.
	Server, Token string
	// Until is when the caller stops sending; zero streams for Hold
	// (default [DefaultEchoHold]) from when the echo starts.
	Until time.Time
	Hold  time.Duration
	// HTTPClient posts the offer (nil: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Logger receives the call's warnings (nil: discard).
	Logger *slog.Logger
	// OnUp, when set, is called once the echo is up, before the caller
	// starts sending (not at all when the call fails first).
	OnUp func()
	// Clock, when set, sends the caller's frames: a load generator's
	// calls share one (nil: a pacer and timer of the call's own).
	Clock *FrameClock
}

// EchoResult is what one echo call measured.
type EchoResult struct {
	// Handshake is the time from posting the offer to the echo app's
	// call event: the server's handshake queue, ICE, DTLS and SCTP.
	Handshake time.Duration
	// Sent is how many numbered frames the caller sent; Echoed how many
	// of them came back, Lost how many did not.
	Sent, Echoed, Lost int
	// Duplicates counts frames heard back more than once; Corrupt, audio
	// heard back that is neither silence nor a numbered frame.
	Duplicates, Corrupt int
	// Late counts frames (echo or silence) that reached the caller more
	// than 40 ms after their slot behind the frame before: a gap over
	// 60 ms in the server's 20 ms stream, however the echo was queued.
	Late int
	// RTT is each echoed frame's round trip (sent → heard back).
	RTT []time.Duration
	// CallerLate counts frames the caller's own pacer sent more than 40 ms
	// late while streaming: the load generator falling behind, not koel.
	CallerLate int64
}

// echoLog is the caller's record of its numbered frames. The pacer sends
// a frame (next) and the reader hears it back (heard) on different
// goroutines, either first.
type echoLog struct {
	mu      sync.Mutex
	sentAt  []time.Time
	heardAt []time.Time
	echoed  int
	dups    int
	corrupt int
	armed   bool
	// sent is how many frames next has handed out; allSent is closed when
	// that is all of them. frame is next's buffer (the pacer copies it).
	sent    int
	allSent chan struct{}
	frame   []int16
	// last is when the previous frame arrived; late counts gaps over
	// one slot plus lateThreshold.
	last time.Time
	late int
}

func newEchoLog() *echoLog {
	return &echoLog{allSent: make(chan struct{}), frame: make([]int16, audio.FrameSamples)}
}

// arm starts the stream: the next n slots carry numbered frames.
func (e *echoLog) arm(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sentAt, e.heardAt, e.armed = make([]time.Time, n), make([]time.Time, n), true
}

// next is the caller pacer's source: the next numbered frame, sent at
// now, or nil (silence) before arm and after the last one.
func (e *echoLog) next(now time.Time) []int16 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.armed || e.sent >= len(e.sentAt) {
		return nil
	}
	i := e.sent
	e.sentAt[i] = now
	e.sent++
	if e.sent == len(e.sentAt) {
		close(e.allSent)
	}
	writeEchoFrame(e.frame, uint32(i))
	return e.frame
}

func (e *echoLog) sentCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent
}

// heard is the client's frame tap (reader goroutine).
func (e *echoLog) heard(f []int16) {
	now := time.Now()
	n, ok := readEchoFrame(f)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.armed {
		return
	}
	if !e.last.IsZero() && now.Sub(e.last) > audio.FrameDuration+lateThreshold {
		e.late++
	}
	e.last = now
	switch {
	case !ok && !quiet(f):
		e.corrupt++
	case !ok:
	case int(n) >= len(e.heardAt):
		e.corrupt++
	case !e.heardAt[n].IsZero():
		e.dups++
	default:
		e.heardAt[n] = now
		e.echoed++
	}
}

func (e *echoLog) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.echoed
}

// result fills res from the frames sent so far.
func (e *echoLog) result(res *EchoResult) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sent := e.sent
	res.Sent, res.Duplicates, res.Corrupt, res.Late = sent, e.dups, e.corrupt, e.late
	for i := range min(sent, len(e.sentAt)) {
		if e.heardAt[i].IsZero() || e.sentAt[i].IsZero() {
			continue
		}
		res.Echoed++
		res.RTT = append(res.RTT, e.heardAt[i].Sub(e.sentAt[i]))
	}
	res.Lost = sent - res.Echoed
}

// EchoCall places one softphone call to the echo app over WebRTC: once the
// echo is up, the caller sends a numbered frame every 20 ms until
// cfg.Until (or for cfg.Hold), waits a second for the last ones to come
// back, and hangs up. It reports the handshake time and, per frame, whether
// it came back and how long it took. ctx bounds the call.
func EchoCall(ctx context.Context, cfg EchoConfig) (res EchoResult, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hold <= 0 {
		cfg.Hold = DefaultEchoHold
	}
	api, err := newAPI(log)
	if err != nil {
		return res, err
	}
	el := newEchoLog()
	start := time.Now()
	c, err := dialSim(ctx, api, clientConfig{Server: cfg.Server, Token: cfg.Token, Echo: true, HTTPClient: cfg.HTTPClient,
		Logger: log, onFrame: el.heard, source: el.next, clock: cfg.Clock})
	if err != nil {
		return res, err
	}
	defer func() { _ = c.hangup() }()
	if err := waitEchoUp(ctx, c); err != nil {
		return res, err
	}
	res.Handshake = time.Since(start)
	if cfg.OnUp != nil {
		cfg.OnUp()
	}

	until := cfg.Until
	if until.IsZero() {
		until = time.Now().Add(cfg.Hold)
	}
	n := max(int(time.Until(until)/audio.FrameDuration), 1)
	stats := &c.leg.pacer.stats
	lateBefore := stats.late.Load()
	// The caller's pacer takes the numbered frames from el at its slots.
	el.arm(n)
	defer func() { el.result(&res) }()
	select {
	case <-el.allSent:
	case <-c.leg.ended:
		return res, fmt.Errorf("%w: media ended after %d of %d frames: %w", ErrCallFailed, el.sentCount(), n, c.leg.endCause())
	case <-ctx.Done():
		return res, fmt.Errorf("%w: after %d of %d frames: %w", ErrCallFailed, el.sentCount(), n, ctx.Err())
	}
	res.CallerLate = stats.late.Load() - lateBefore

	// The last frames are still on their way back.
	tail := time.NewTimer(echoTail)
	defer tail.Stop()
	poll := time.NewTicker(audio.FrameDuration)
	defer poll.Stop()
	for el.count() < n {
		select {
		case <-poll.C:
		case <-tail.C:
			return res, nil
		case <-c.leg.ended:
			return res, nil
		case <-ctx.Done():
			return res, nil
		}
	}
	return res, nil
}

// waitEchoUp waits for the echo app's call event: the media is up and the
// server echoes from now on.
func waitEchoUp(ctx context.Context, c *client) error {
	for {
		select {
		case ev := <-c.events:
			switch ev.Type {
			case EventCall:
				return nil
			case EventError, EventHangup:
				return fmt.Errorf("%w: %s %s", ErrCallFailed, ev.Type, ev.Text)
			}
		case <-c.leg.ended:
			cause := c.leg.endCause()
			if cause == nil {
				cause = errors.New("ended")
			}
			return fmt.Errorf("%w: media ended before the echo started: %w", ErrCallFailed, cause)
		case <-ctx.Done():
			return fmt.Errorf("%w: echo did not start: %w", ErrCallFailed, ctx.Err())
		}
	}
}
