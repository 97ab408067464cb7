package ivr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Abandoned calls. A call whose platform stops sending events (KooKoo lost
// it, a caller's network dropped without a Hangup) would stay live for
// good; the sweeper ends every call idle past a limit with its own outcome.

// OutcomeAbandoned ends a call that had no event for longer than the idle
// limit.
const OutcomeAbandoned = "abandoned"

// Sweeper defaults.
const (
	// DefaultIdleLimit is how long a live call may go without an event
	// before it is abandoned. It exceeds the longest wait between events:
	// a transfer's agent leg (KooKoo's dial limittime defaults to 1000 s).
	DefaultIdleLimit = 2 * time.Hour
	// DefaultSweepEvery is how often RunSweeper sweeps.
	DefaultSweepEvery = time.Minute
	// sweepBatch is how many idle calls one query returns.
	sweepBatch = 500
)

// SweepIdleCalls ends every call that has had no event for longer than the
// service's idle limit (by its clock): the call gets OutcomeAbandoned, its
// conversation is closed and koel_calls_active goes down. Each call is
// ended under its call lock with a versioned update, so nodes sweeping the
// same database at once, or an event arriving meanwhile, never end a call
// twice: a call that is locked or changed is left for the next sweep. It
// returns how many calls this sweep ended.
func (v *VoiceService) SweepIdleCalls(ctx context.Context) (int, error) {
	cutoff := v.now().Add(-v.idleLimit)
	ended := 0
	skipped := map[string]bool{}
	for {
		calls, err := v.store.ListIdleCalls(ctx, cutoff, sweepBatch+len(skipped))
		if err != nil {
			return ended, fmt.Errorf("ivr: sweep: %w", err)
		}
		progress := false
		for _, c := range calls {
			if skipped[c.SID] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return ended, err
			}
			ok, err := v.abandon(ctx, c.SID, cutoff)
			if err != nil {
				return ended, err
			}
			if ok {
				ended++
				progress = true
			} else {
				skipped[c.SID] = true
			}
		}
		if !progress || len(calls) < sweepBatch+len(skipped) {
			return ended, nil
		}
	}
}

// abandon ends one idle call if it still is live and idle, under its
// locks. ok is false when the call was left alone.
func (v *VoiceService) abandon(ctx context.Context, sid string, cutoff time.Time) (bool, error) {
	unlock, err := v.lockLocal(ctx, sid, 0)
	if err != nil {
		return false, nil // an event of this call is running here
	}
	defer unlock()
	if err := v.store.AcquireCallLock(ctx, sid, v.node, v.lockTTL); err != nil {
		if errors.Is(err, ErrLocked) {
			return false, nil // another node is answering or sweeping it
		}
		return false, fmt.Errorf("ivr: sweep: lock call: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := v.store.ReleaseCallLock(rctx, sid, v.node); err != nil {
			v.log.LogAttrs(rctx, slog.LevelWarn, "release call lock failed", slog.String("sid", sid), slog.String("error", err.Error()))
		}
	}()
	c, err := v.store.GetCall(ctx, sid)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("ivr: sweep: get call: %w", err)
	}
	if !c.Live() || !c.EndedAt.IsZero() || !c.UpdatedAt.Before(cutoff) {
		return false, nil
	}
	c.State, c.Outcome, c.EndedAt = CallStateEnded, OutcomeAbandoned, v.now()
	c.Repair = CallRepair{}
	c.LastResponse = ""
	if err := v.store.UpdateCall(ctx, &c); err != nil {
		if errors.Is(err, ErrVersionConflict) {
			return false, nil
		}
		return false, fmt.Errorf("ivr: sweep: end call: %w", err)
	}
	v.ended(ctx, c, v.log.With(slog.String("sid", sid)))
	return true, nil
}

// RunSweeper sweeps idle calls every interval (0 = DefaultSweepEvery)
// until ctx is done. Failures are logged and retried at the next tick.
func (v *VoiceService) RunSweeper(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultSweepEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := v.SweepIdleCalls(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			v.log.LogAttrs(ctx, slog.LevelError, "sweep of idle calls failed", slog.String("error", err.Error()))
		case n > 0:
			v.log.LogAttrs(ctx, slog.LevelInfo, "abandoned idle calls", slog.Int("calls", n), slog.Duration("idle_limit", v.idleLimit))
		}
	}
}
