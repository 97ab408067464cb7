package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/koelvoice/koel/audio"
)

// SoftphoneConfig configures one [SoftphoneCall] (koel load's softphone
// scenario).
type SoftphoneConfig struct {
	// Server is koel's base URL; Connection the KooKoo connection's
	// identifier ("demo"); Token the softphone token outside development
	// mode.
	Server, Connection, Token string
	// Clips are what the caller says, one per recording the emulator
	// listens for.
	Clips []audio.PCM
	// ThinkTime is the caller's pause before speaking.
	ThinkTime time.Duration
	// Logger receives the call's warnings (nil: discard).
	Logger *slog.Logger
	// Clock, when set, sends the caller's frames: a load generator's
	// calls share one (nil: a pacer and timer of the call's own).
	Clock *FrameClock
}

// SoftphoneResult is what one softphone call measured.
type SoftphoneResult struct {
	// Turns is the number of clips spoken and answered.
	Turns int
	// ReplyMS is, per recorded turn, the time from the end of the caller's
	// speech to the first reply audio, as the emulator measured it; -1 for
	// a turn that got no audio reply.
	ReplyMS []int64
}

// SoftphoneCall places one softphone call over WebRTC on loopback, like
// `koel call`: it speaks each clip when the emulator listens for a
// recording (a menu gets no key), and hangs up once the bot has answered
// the last clip and listens again (or hung up itself). ctx bounds the call.
func SoftphoneCall(ctx context.Context, cfg SoftphoneConfig) (SoftphoneResult, error) {
	var res SoftphoneResult
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Clips) == 0 {
		return res, errors.New("sim: a softphone call needs something to say")
	}
	api, err := newAPI(log)
	if err != nil {
		return res, err
	}
	c, err := dialSim(ctx, api, clientConfig{Server: cfg.Server, Connection: cfg.Connection, Token: cfg.Token, Logger: log, clock: cfg.Clock})
	if err != nil {
		return res, err
	}
	defer func() { _ = c.hangup() }()
	sent := 0
	var id uint64
	for {
		select {
		case ev := <-c.events:
			switch ev.Type {
			case EventError:
				return res, fmt.Errorf("%w: %s", ErrCallFailed, ev.Text)
			case EventTurn:
				res.ReplyMS = append(res.ReplyMS, ev.ReplyMS)
			case EventHangup:
				if ev.Reason == "error" {
					return res, fmt.Errorf("%w: %s", ErrCallFailed, ev.Text)
				}
				res.Turns = min(sent, len(res.ReplyMS))
				return res, nil
			case EventListen:
				if ev.Mode != "record" {
					continue // a menu: the caller presses nothing
				}
				if sent == len(cfg.Clips) {
					res.Turns = sent
					return res, nil
				}
				if cfg.ThinkTime > 0 {
					t := time.NewTimer(cfg.ThinkTime)
					select {
					case <-ctx.Done():
						t.Stop()
						return res, ctx.Err()
					case <-t.C:
					}
				}
				id++
				if err := c.send(ctx, &playItem{id: id, pcm: cfg.Clips[sent].Samples}); err != nil {
					return res, err
				}
				sent++
			}
		case <-c.leg.ended:
			return res, fmt.Errorf("%w: media ended: %w", ErrCallFailed, c.leg.endCause())
		case <-ctx.Done():
			return res, fmt.Errorf("%w: after %d of %d clips: %w", ErrCallFailed, sent, len(cfg.Clips), ctx.Err())
		}
	}
}
